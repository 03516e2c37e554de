"""Dates and month counts said naturally per language.

`say_date` gives the form that follows "since" in the shipped texts ("з …", "с …", "от …", "since …"):
Ukrainian and Russian in the genitive with ordinal words ("двадцять третього листопада дві тисячі двадцять
шостого року"), Bulgarian with a masculine ordinal day and feminine ordinal year ("двадесет и трети ноември две
хиляди двадесет и шеста година"), English "November twenty-third, twenty twenty-six". Words, not digits, so
the TTS engine cannot pick a wrong case.
"""

from __future__ import annotations

from datetime import date

from num2words import num2words

from ivr.speech.numbers import LANGS, cardinal, plural_form

_MONTHS = {
    "uk": ["січня", "лютого", "березня", "квітня", "травня", "червня", "липня", "серпня", "вересня", "жовтня",
           "листопада", "грудня"],
    "ru": ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
           "ноября", "декабря"],
    "bg": ["януари", "февруари", "март", "април", "май", "юни", "юли", "август", "септември", "октомври",
           "ноември", "декември"],
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
}

# Genitive masculine/neuter ordinals (uk, ru): 1..19 and the round tens 20..90.
_ORD_GEN = {
    "uk": ["", "першого", "другого", "третього", "четвертого", "п'ятого", "шостого", "сьомого", "восьмого",
           "дев'ятого", "десятого", "одинадцятого", "дванадцятого", "тринадцятого", "чотирнадцятого",
           "п'ятнадцятого", "шістнадцятого", "сімнадцятого", "вісімнадцятого", "дев'ятнадцятого"],
    "ru": ["", "первого", "второго", "третьего", "четвёртого", "пятого", "шестого", "седьмого", "восьмого",
           "девятого", "десятого", "одиннадцатого", "двенадцатого", "тринадцатого", "четырнадцатого",
           "пятнадцатого", "шестнадцатого", "семнадцатого", "восемнадцатого", "девятнадцатого"],
}
_ORD_GEN_TENS = {
    "uk": ["", "", "двадцятого", "тридцятого", "сорокового", "п'ятдесятого", "шістдесятого", "сімдесятого",
           "вісімдесятого", "дев'яностого"],
    "ru": ["", "", "двадцатого", "тридцатого", "сорокового", "пятидесятого", "шестидесятого", "семидесятого",
           "восьмидесятого", "девяностого"],
}
_YEAR_WORD = {"uk": "року", "ru": "года"}
_Y2000 = {"uk": "двохтисячного", "ru": "двухтысячного"}

# Bulgarian ordinals 1..19 and round tens, masculine stem + ending: 'и' (masc.), 'а' (fem.)
_BG_ORD = ["", "първ", "втор", "трет", "четвърт", "пет", "шест", "седм", "осм", "девет", "десет", "единадесет",
           "дванадесет", "тринадесет", "четиринадесет", "петнадесет", "шестнадесет", "седемнадесет",
           "осемнадесет", "деветнадесет"]
_BG_ORD_TENS = ["", "", "двадесет", "тридесет", "четиридесет", "петдесет", "шестдесет", "седемдесет",
                "осемдесет", "деветдесет"]


def _slavic_ordinal_gen(n: int, lang: str) -> str:
    """1..99 as a genitive ordinal: 23 → двадцять третього."""
    if n < 20:
        return _ORD_GEN[lang][n]
    tens, units = divmod(n, 10)
    if not units:
        return _ORD_GEN_TENS[lang][tens]
    return f"{cardinal(tens * 10, lang)} {_ORD_GEN[lang][units]}"


def _slavic_year(y: int, lang: str) -> str:
    if y == 2000:
        return _Y2000[lang]
    rest = y % 100
    if rest == 0:
        return cardinal(y, lang)  # rare round centuries: cardinal is understood
    words = f"{cardinal(y - rest, lang)} {_slavic_ordinal_gen(rest, lang)}"
    return words.removeprefix("одна ")  # years say "тисяча дев'ятсот…", not "одна тисяча…"


def _bg_ordinal(n: int, fem: bool) -> str:
    """1..99 as a Bulgarian ordinal: 23 → двадесет и трети / двадесет и трета."""
    end = "а" if fem else "и"
    if n < 20:
        return _BG_ORD[n] + end
    tens, units = divmod(n, 10)
    if not units:
        return _BG_ORD_TENS[tens] + end
    return f"{_BG_ORD_TENS[tens]} и {_BG_ORD[units]}{end}"


def _bg_year(y: int) -> str:
    if y == 2000:
        return "двехилядна"
    rest = y % 100
    if rest == 0:
        return cardinal(y, "bg")
    parts = [cardinal(y // 1000 * 1000, "bg")] if y >= 1000 else []
    if (y % 1000) // 100:
        parts.append(cardinal((y % 1000) // 100 * 100, "bg"))
    ordinal = _bg_ordinal(rest, fem=True)
    # 'и' before a one-word last part: две хиляди и шеста, but две хиляди двадесет и шеста
    if " и " in ordinal or not parts:
        return " ".join(parts + [ordinal])
    return " ".join(parts) + " и " + ordinal


def say_date(d: date, lang: str) -> str:
    """The date in words, in the form that follows 'since' in the shipped texts (see the module doc)."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")
    month = _MONTHS[lang][d.month - 1]
    if lang in ("uk", "ru"):
        return f"{_slavic_ordinal_gen(d.day, lang)} {month} {_slavic_year(d.year, lang)} {_YEAR_WORD[lang]}"
    if lang == "bg":
        return f"{_bg_ordinal(d.day, fem=False)} {month} {_bg_year(d.year)} година"
    return f"{month} {num2words(d.day, lang='en', to='ordinal')}, {num2words(d.year, lang='en', to='year')}"


_MONTH_WORD = {"uk": ("місяць", "місяці", "місяців"), "ru": ("месяц", "месяца", "месяцев"),
               "bg": ("месец", "месеца", "месеца"), "en": ("month", "months", "months")}


def say_months(n: int, lang: str) -> str:
    """A count of months: 1 → один місяць, 3 → три місяці, 5 → п'ять місяців."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")
    return f"{cardinal(n, lang, 'm')} {_MONTH_WORD[lang][plural_form(n, lang)]}"
