"""Dates and month counts said naturally per language, as word tokens (ivr.speech.words) and as text.

`say_date` gives the form that follows "since" in the shipped texts ("з …", "с …", "от …", "since …"):
Ukrainian and Russian in the genitive with ordinal words ("двадцять третього листопада дві тисячі двадцять
шостого року"), Bulgarian with a masculine ordinal day and feminine ordinal year ("двадесет и трети ноември две
хиляди двадесет и шеста година"), English "November twenty-third, twenty twenty-six". Words, not digits, so
the TTS engine cannot pick a wrong case, and each word names its number-kit clip (23rd = `20` + `ord.3`).
"""

from __future__ import annotations

from datetime import date, time

from ivr.speech.numbers import AND, LANGS, cardinal_words, form_word, unit
from ivr.speech.words import Word, say

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


_EN_ORD = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
           "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
           "nineteenth"]
_EN_ORD_TENS = ["", "", "twentieth", "thirtieth"]


def _check(lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")


def _slavic_ordinal_gen(n: int, lang: str) -> list[Word]:
    """1..99 as a genitive ordinal: 23 → двадцять третього (clips `20`, `ord.3`)."""
    if n < 20:
        return [Word(f"ord.{n}", _ORD_GEN[lang][n])]
    tens, units = divmod(n, 10)
    if not units:
        return [Word(f"ord.{n}", _ORD_GEN_TENS[lang][tens])]
    return cardinal_words(tens * 10, lang) + [Word(f"ord.{units}", _ORD_GEN[lang][units])]


def _slavic_year(y: int, lang: str) -> list[Word]:
    if y == 2000:
        return [Word("y2000", _Y2000[lang])]
    rest = y % 100
    if rest == 0:
        return cardinal_words(y, lang)  # rare round centuries: cardinal is understood
    words = cardinal_words(y - rest, lang) + _slavic_ordinal_gen(rest, lang)
    return words[1:] if words[0].key == "1f" else words  # years say "тисяча дев'ятсот…", not "одна тисяча…"


def _bg_ordinal(n: int, fem: bool) -> list[Word]:
    """1..99 as a Bulgarian ordinal: 23 → двадесет и трети / двадесет и трета (clips `ord.m.N` / `ord.f.N`)."""
    end, g = ("а", "f") if fem else ("и", "m")
    if n < 20:
        return [Word(f"ord.{g}.{n}", _BG_ORD[n] + end)]
    tens, units = divmod(n, 10)
    if not units:
        return [Word(f"ord.{g}.{n}", _BG_ORD_TENS[tens] + end)]
    return [Word(str(tens * 10), _BG_ORD_TENS[tens]), AND["bg"], Word(f"ord.{g}.{units}", _BG_ORD[units] + end)]


def _bg_year(y: int) -> list[Word]:
    if y == 2000:
        return [Word("y2000", "двехилядна")]
    rest = y % 100
    if rest == 0:
        return cardinal_words(y, "bg")
    parts = cardinal_words(y // 1000 * 1000, "bg") if y >= 1000 else []
    if (y % 1000) // 100:
        parts += cardinal_words((y % 1000) // 100 * 100, "bg")
    ordinal = _bg_ordinal(rest, fem=True)
    # 'и' before a one-word last part: две хиляди и шеста, but две хиляди двадесет и шеста
    if len(ordinal) > 1 or not parts:
        return parts + ordinal
    return parts + [AND["bg"]] + ordinal


def _en_ordinal(n: int) -> list[Word]:
    if n < 20:
        return [Word(f"ord.{n}", _EN_ORD[n])]
    tens, units = divmod(n, 10)
    if not units:
        return [Word(f"ord.{n}", _EN_ORD_TENS[tens])]
    return cardinal_words(tens * 10, "en") + [Word(f"ord.{units}", _EN_ORD[units], "-")]


def _en_year(y: int) -> list[Word]:
    """As people say years: twenty twenty-six, nineteen oh-five, two thousand and five, nineteen hundred."""
    century, rest = divmod(y, 100)
    if 2000 <= y < 2010 or y < 1000:
        return cardinal_words(y, "en")
    if rest == 0:
        return cardinal_words(century, "en") + [Word("hundred", "hundred")]
    if rest < 10:
        return cardinal_words(century, "en") + [Word("oh", "oh"), Word(str(rest), unit(rest, "en").text, "-")]
    return cardinal_words(century, "en") + cardinal_words(rest, "en")


def date_words(d: date, lang: str) -> list[Word]:
    """The date as word tokens, in the form that follows 'since' in the shipped texts (see the module doc)."""
    _check(lang)
    month = Word(f"month.{d.month}", _MONTHS[lang][d.month - 1])
    if lang in ("uk", "ru"):
        return (_slavic_ordinal_gen(d.day, lang) + [month] + _slavic_year(d.year, lang)
                + [Word("year", _YEAR_WORD[lang])])
    if lang == "bg":
        return _bg_ordinal(d.day, fem=False) + [month] + _bg_year(d.year) + [Word("year", "година")]
    year = _en_year(d.year)
    year[0] = Word(year[0].key, year[0].text, ", ")  # "November twenty-third, twenty twenty-six"
    return [month] + _en_ordinal(d.day) + year


def say_date(d: date, lang: str) -> str:
    """The date in words, in the form that follows 'since' in the shipped texts (see the module doc)."""
    return say(date_words(d, lang))


_MONTH_WORD = {"uk": ("місяць", "місяці", "місяців"), "ru": ("месяц", "месяца", "месяцев"),
               "bg": ("месец", "месеца", "месеца"), "en": ("month", "months", "months")}


def months_words(n: int, lang: str) -> list[Word]:
    """A count of months: 1 → один місяць, 3 → три місяці, 5 → п'ять місяців (clips `months.one|few|many`)."""
    _check(lang)
    return cardinal_words(n, lang, "m") + [form_word("months", _MONTH_WORD[lang], n, lang)]


def say_months(n: int, lang: str) -> str:
    return say(months_words(n, lang))


_HOUR_WORD = {"uk": ("година", "години", "годин"), "ru": ("час", "часа", "часов"), "bg": ("час", "часа", "часа")}
_MINUTE_WORD = {"uk": ("хвилина", "хвилини", "хвилин"), "ru": ("минута", "минуты", "минут"),
                "bg": ("минута", "минути", "минути")}
_HOUR_GENDER = {"uk": "f", "ru": "m", "bg": "m"}


def time_words(t: time, lang: str) -> list[Word]:
    """A wall-clock time (24-hour) as said in a notice: 9:00 → "дев'ять годин" / "nine o'clock", 17:30 →
    "сімнадцять годин тридцять хвилин" / "seventeen thirty" (no a.m./p.m.: the 24-hour reading is unambiguous)."""
    _check(lang)
    if lang == "en":
        if t.minute == 0:
            return cardinal_words(t.hour, "en") + [Word("oclock", "o'clock")]
        mins = ([Word("oh", "oh"), unit(t.minute, "en")] if t.minute < 10 else cardinal_words(t.minute, "en"))
        return cardinal_words(t.hour, "en") + mins
    out = cardinal_words(t.hour, lang, _HOUR_GENDER[lang]) if t.hour else [unit(0, lang)]
    out.append(form_word("hours", _HOUR_WORD[lang], t.hour, lang))
    if t.minute:
        if lang == "bg":
            out.append(Word("and", "и"))
        out += cardinal_words(t.minute, lang, "f") + [form_word("minutes", _MINUTE_WORD[lang], t.minute, lang)]
    return out


def say_time(t: time, lang: str) -> str:
    return say(time_words(t, lang))
