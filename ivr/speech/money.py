"""Money in words: the amount with its currency and minor units, grammatically agreed, per language.

`amount_words` gives word tokens (see ivr.speech.words: each names the number-kit clip that says it) cut where agreement never crosses the cut (thousands | rest + currency word |
minor units + their word), so each piece can be rendered and cached alone; `amount_segments` gives the same
pieces as texts and `amount_in_words` joins them. Currencies: UAH, RUB, BGN, EUR, USD; languages: uk, ru, bg, en.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ivr.speech.numbers import AND, LANGS, cardinal_split_words, form_word
from ivr.speech.words import Word, say

CURRENCIES = ("UAH", "RUB", "BGN", "EUR", "USD")

# lang -> currency -> ((one, few, many), gender, (minor one, few, many), minor gender); bg/en repeat 'many' as few
_FORMS: dict[str, dict[str, tuple[tuple[str, str, str], str, tuple[str, str, str], str]]] = {
    "uk": {
        "UAH": (("гривня", "гривні", "гривень"), "f", ("копійка", "копійки", "копійок"), "f"),
        "RUB": (("рубль", "рублі", "рублів"), "m", ("копійка", "копійки", "копійок"), "f"),
        "BGN": (("лев", "леви", "левів"), "m", ("стотинка", "стотинки", "стотинок"), "f"),
        "EUR": (("євро", "євро", "євро"), "m", ("цент", "центи", "центів"), "m"),
        "USD": (("долар", "долари", "доларів"), "m", ("цент", "центи", "центів"), "m"),
    },
    "ru": {
        "UAH": (("гривна", "гривны", "гривен"), "f", ("копейка", "копейки", "копеек"), "f"),
        "RUB": (("рубль", "рубля", "рублей"), "m", ("копейка", "копейки", "копеек"), "f"),
        "BGN": (("лев", "лева", "левов"), "m", ("стотинка", "стотинки", "стотинок"), "f"),
        "EUR": (("евро", "евро", "евро"), "m", ("цент", "цента", "центов"), "m"),
        "USD": (("доллар", "доллара", "долларов"), "m", ("цент", "цента", "центов"), "m"),
    },
    "bg": {
        "UAH": (("гривна", "гривни", "гривни"), "f", ("копейка", "копейки", "копейки"), "f"),
        "RUB": (("рубла", "рубли", "рубли"), "f", ("копейка", "копейки", "копейки"), "f"),
        "BGN": (("лев", "лева", "лева"), "m", ("стотинка", "стотинки", "стотинки"), "f"),
        "EUR": (("евро", "евро", "евро"), "n", ("цент", "цента", "цента"), "m"),
        "USD": (("долар", "долара", "долара"), "m", ("цент", "цента", "цента"), "m"),
    },
    "en": {
        "UAH": (("hryvnia", "hryvnias", "hryvnias"), "m", ("kopiyka", "kopiykas", "kopiykas"), "m"),
        "RUB": (("rouble", "roubles", "roubles"), "m", ("kopek", "kopeks", "kopeks"), "m"),
        "BGN": (("lev", "leva", "leva"), "m", ("stotinka", "stotinki", "stotinki"), "m"),
        "EUR": (("euro", "euros", "euros"), "m", ("cent", "cents", "cents"), "m"),
        "USD": (("dollar", "dollars", "dollars"), "m", ("cent", "cents", "cents"), "m"),
    },
}
_MINOR_KEY = {"UAH": "kopiyka", "RUB": "kopek", "BGN": "stotinka", "EUR": "cent", "USD": "cent"}
_MINOR_JOIN = AND  # bg/en join the minor units with their 'and': "пет лева и пет стотинки"


def _check(currency: str, lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")
    if currency not in CURRENCIES:
        raise ValueError(f"unsupported currency {currency!r}; one of {', '.join(CURRENCIES)}")


def to_cents(amount: Decimal | int | str | float) -> int:
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise ValueError(f"not an amount: {amount!r}") from None
    if value < 0:
        raise ValueError(f"negative amount {value}: only debts are said")
    return int(value * 100)


def currency_word(n: int, currency: str, lang: str, minor: bool = False) -> str:
    """The currency noun in the form that follows the number `n` (2 → гривні, 5 → гривень)."""
    return money_word(n, currency, lang, minor).text


def currency_name(currency: str, lang: str) -> str:
    """The currency's name alone (the 'many' form: гривень / лева / dollars) for texts that name it."""
    return currency_word(5, currency, lang)


def money_word(n: int, currency: str, lang: str, minor: bool = False) -> Word:
    """The currency noun after `n` as a kit word: clip `uah.few` ("гривні"); minor units by their own
    name, shared by currencies that share the word (`kopiyka.many` "копійок", `cent.one`)."""
    _check(currency, lang)
    forms, _, minor_forms, _ = _FORMS[lang][currency]
    if not minor:
        return form_word(currency.lower(), forms, n, lang)
    # one clip per minor-unit word: where two currencies share it (копійка of UAH and RUB) the first names it
    same = next(c for c in CURRENCIES if _FORMS[lang][c][2] == minor_forms)
    return form_word(_MINOR_KEY[same], minor_forms, n, lang)


def amount_words(amount: Decimal | int | str | float, currency: str, lang: str) -> list[list[Word]]:
    """The amount as independent pieces of words: [thousands and above], rest + currency, [minor + its word]."""
    _check(currency, lang)
    cents = to_cents(amount)
    major, minor = divmod(cents, 100)
    _, gender, _, minor_gender = _FORMS[lang][currency]
    high, low = cardinal_split_words(major, lang, gender)
    word = money_word(major, currency, lang)
    # the currency word goes with the last non-empty part: it agrees with the number said just before it
    out = ([high] if high else []) + [low + [word]] if low else [high + [word]]
    if minor:
        _, m_low = cardinal_split_words(minor, lang, minor_gender)
        join = [_MINOR_JOIN[lang]] if lang in _MINOR_JOIN else []
        out.append(join + m_low + [money_word(minor, currency, lang, minor=True)])
    return out


def amount_segments(amount: Decimal | int | str | float, currency: str, lang: str) -> list[str]:
    """The amount in words as independent pieces of text (see amount_words)."""
    return [say(piece) for piece in amount_words(amount, currency, lang)]


def amount_in_words(amount: Decimal, currency: str, lang: str) -> str:
    """'1 021.05 UAH' in Ukrainian → 'одна тисяча двадцять одна гривня п'ять копійок'."""
    return " ".join(amount_segments(amount, currency, lang))
