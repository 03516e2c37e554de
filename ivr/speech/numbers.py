"""Whole numbers as word tokens per language, with grammatical gender, split at the thousands for segmenting.

One grammar for both speech paths: `cardinal_words` yields `Word`s (text + the number-kit clip that says it);
`cardinal` joins them for a TTS engine. Ukrainian, Russian, Bulgarian and English are our own tables (they agree
with num2words 0.5.14 for uk/ru/en, which tests check, but also give each word its clip, keep Russian and
Ukrainian millions masculine where num2words' feminine would say "одна миллион", and cover Bulgarian, which
num2words does not implement, with "и" placed the way Bulgarian places it). Numbers below 10**12.
"""

from __future__ import annotations

from ivr.speech.words import Word, say

LANGS = ("uk", "ru", "bg", "en")
GENDERS = ("m", "f", "n")
FORM_NAMES = ("one", "few", "many")  # kit key suffix for plural_form 0, 1, 2
LIMIT = 10**12

_UNITS = {
    "uk": ["нуль", "один", "два", "три", "чотири", "п'ять", "шість", "сім", "вісім", "дев'ять", "десять",
           "одинадцять", "дванадцять", "тринадцять", "чотирнадцять", "п'ятнадцять", "шістнадцять", "сімнадцять",
           "вісімнадцять", "дев'ятнадцять"],
    "ru": ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять", "десять",
           "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать", "шестнадцать", "семнадцать",
           "восемнадцать", "девятнадцать"],
    "bg": ["нула", "един", "два", "три", "четири", "пет", "шест", "седем", "осем", "девет", "десет",
           "единадесет", "дванадесет", "тринадесет", "четиринадесет", "петнадесет", "шестнадесет",
           "седемнадесет", "осемнадесет", "деветнадесет"],
    "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
           "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"],
}
# 1 and 2 by gender (m, f, n); the kit key names the first gender with that word: 2n "два" is clip 2m
_GENDERED = {
    "uk": {1: ("один", "одна", "одне"), 2: ("два", "дві", "два")},
    "ru": {1: ("один", "одна", "одно"), 2: ("два", "две", "два")},
    "bg": {1: ("един", "една", "едно"), 2: ("два", "две", "две")},
}
_TENS = {
    "uk": ["", "", "двадцять", "тридцять", "сорок", "п'ятдесят", "шістдесят", "сімдесят", "вісімдесят",
           "дев'яносто"],
    "ru": ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят", "восемьдесят",
           "девяносто"],
    "bg": ["", "", "двадесет", "тридесет", "четиридесет", "петдесет", "шестдесет", "седемдесет", "осемдесет",
           "деветдесет"],
    "en": ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"],
}
_HUNDREDS = {
    "uk": ["", "сто", "двісті", "триста", "чотириста", "п'ятсот", "шістсот", "сімсот", "вісімсот", "дев'ятсот"],
    "ru": ["", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот", "восемьсот", "девятьсот"],
    "bg": ["", "сто", "двеста", "триста", "четиристотин", "петстотин", "шестстотин", "седемстотин", "осемстотин",
           "деветстотин"],
}
# (value, kit name, (one, few, many), gender of the scale noun); bg/en repeat a form where they have fewer
_SCALES = {
    "uk": [(10**9, "billion", ("мільярд", "мільярди", "мільярдів"), "m"),
           (10**6, "million", ("мільйон", "мільйони", "мільйонів"), "m"),
           (10**3, "thousand", ("тисяча", "тисячі", "тисяч"), "f")],
    "ru": [(10**9, "billion", ("миллиард", "миллиарда", "миллиардов"), "m"),
           (10**6, "million", ("миллион", "миллиона", "миллионов"), "m"),
           (10**3, "thousand", ("тысяча", "тысячи", "тысяч"), "f")],
    "bg": [(10**9, "billion", ("милиард", "милиарда", "милиарда"), "m"),
           (10**6, "million", ("милион", "милиона", "милиона"), "m"),
           (10**3, "thousand", ("хиляда", "хиляди", "хиляди"), "f")],
    "en": [(10**9, "billion", ("billion",) * 3, "m"),
           (10**6, "million", ("million",) * 3, "m"),
           (10**3, "thousand", ("thousand",) * 3, "m")],
}
AND = {"bg": Word("and", "и"), "en": Word("and", "and")}


def plural_form(n: int, lang: str) -> int:
    """Which noun form follows the number: 0 = one, 1 = few (2-4), 2 = many (uk/ru); bg/en: 0 = one, 2 = other."""
    if lang in ("uk", "ru"):
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 2


def form_word(key: str, forms: tuple[str, str, str], n: int, lang: str) -> Word:
    """The noun form that follows `n`, as the kit clip `<key>.one|few|many`; where forms are the same word
    (євро, bg лева after 2 and 5) one clip says it: the first of one, many, few with that word."""
    text = forms[plural_form(n, lang)]
    i = next(i for i in (0, 2, 1) if forms[i] == text)
    return Word(f"{key}.{FORM_NAMES[i]}", text)


def unit(u: int, lang: str, gender: str = "m") -> Word:
    """0..19 in `gender` (only 1 and 2 differ, and not in English)."""
    table = _GENDERED.get(lang, {}).get(u)
    if table is None:
        return Word(str(u), _UNITS[lang][u])
    text = table[GENDERS.index(gender)]
    first = GENDERS[table.index(text)]
    return Word(f"{u}{first}", text)


def _tens(t: int, lang: str) -> Word:
    return Word(str(t * 10), _TENS[lang][t])


# --- uk, ru ------------------------------------------------------------------------------------------------------

def _slavic_group(n: int, lang: str, gender: str) -> list[Word]:
    """1..999."""
    out: list[Word] = []
    h, rest = divmod(n, 100)
    if h:
        out.append(Word(str(h * 100), _HUNDREDS[lang][h]))
    if rest >= 20:
        t, u = divmod(rest, 10)
        out.append(_tens(t, lang))
        if u:
            out.append(unit(u, lang, gender))
    elif rest:
        out.append(unit(rest, lang, gender))
    return out


def _slavic(n: int, lang: str, gender: str) -> list[Word]:
    if n == 0:
        return [unit(0, lang)]
    out: list[Word] = []
    rest = n
    for value, key, forms, g in _SCALES[lang]:
        count, rest = divmod(rest, value)
        if count:
            out += _slavic_group(count, lang, g) + [form_word(key, forms, count, lang)]
    if rest:
        out += _slavic_group(rest, lang, gender)
    return out


# --- Bulgarian ---------------------------------------------------------------------------------------------------

def _bg_group(n: int, gender: str) -> list[Word]:
    """Components of 1..999 (without the conjunction)."""
    out: list[Word] = []
    h, rest = divmod(n, 100)
    if h:
        out.append(Word(str(h * 100), _HUNDREDS["bg"][h]))
    if rest >= 20:
        t, u = divmod(rest, 10)
        out.append(_tens(t, "bg"))
        if u:
            out.append(unit(u, "bg", gender))
    elif rest:
        out.append(unit(rest, "bg", gender))
    return out


def _bg_join(parts: list[Word]) -> list[Word]:
    """'и' goes before the last component of a group: сто двадесет и пет, сто и пет."""
    return parts[:-1] + [AND["bg"], parts[-1]] if len(parts) > 1 else parts


def _bg(n: int, gender: str) -> list[Word]:
    if n == 0:
        return [unit(0, "bg")]
    groups: list[tuple[list[Word], int]] = []  # (words, number of numeral components)
    rest = n
    for value, key, forms, g in _SCALES["bg"]:
        count, rest = divmod(rest, value)
        if not count:
            continue
        if count == 1:  # хиляда, but един милион
            words = [form_word(key, forms, 1, "bg")] if value == 1000 else [unit(1, "bg", "m"),
                                                                            form_word(key, forms, 1, "bg")]
            groups.append((words, 1))
        else:
            parts = _bg_group(count, g)
            groups.append((_bg_join(parts) + [form_word(key, forms, count, "bg")], len(parts)))
    if rest:
        parts = _bg_group(rest, gender)
        groups.append((_bg_join(parts), len(parts)))
    out = [w for words, _ in groups[:-1] for w in words]
    # Between groups 'и' only before a last group said with one numeral: хиляда и пет, милион и двеста хиляди,
    # but хиляда сто и пет.
    if len(groups) > 1 and groups[-1][1] == 1:
        out.append(AND["bg"])
    return out + groups[-1][0]


def bg_cardinal(n: int, gender: str = "m") -> str:
    return say(_bg(n, gender))


# --- English -----------------------------------------------------------------------------------------------------

def _en_below_100(n: int) -> list[Word]:
    if n < 20:
        return [unit(n, "en")]
    t, u = divmod(n, 10)
    tens = _tens(t, "en")
    return [tens, Word(str(u), _UNITS["en"][u], "-")] if u else [tens]


def _en_group(n: int) -> list[Word]:
    """1..999: 'one hundred and twenty-one'."""
    h, rest = divmod(n, 100)
    out: list[Word] = []
    if h:
        out += [unit(h, "en"), Word("hundred", "hundred")]
        if rest:
            out.append(AND["en"])
    if rest:
        out += _en_below_100(rest)
    return out


def _en(n: int) -> list[Word]:
    if n == 0:
        return [unit(0, "en")]
    out: list[Word] = []
    rest = n
    for value, key, _, _ in _SCALES["en"]:
        count, rest = divmod(rest, value)
        if count:
            out += _en_group(count) + [Word(key, key)]
    if rest:
        if out and rest < 100:
            out.append(AND["en"])  # one thousand and one; but one thousand one hundred
        out += _en_group(rest)
    return out


# --- all languages -----------------------------------------------------------------------------------------------

def _check(n: int, lang: str) -> None:
    if n < 0:
        raise ValueError(f"negative number {n}")
    if n >= LIMIT:
        raise ValueError(f"number {n} is too large to say (at most {LIMIT - 1})")
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")


def cardinal_words(n: int, lang: str, gender: str = "m") -> list[Word]:
    """`n` (>= 0) as word tokens; `gender` is that of the noun counted (m, f, n)."""
    _check(n, lang)
    if lang == "bg":
        return _bg(n, gender)
    if lang == "en":
        return _en(n)
    return _slavic(n, lang, gender)


def cardinal(n: int, lang: str, gender: str = "m") -> str:
    """`n` (>= 0) in words; `gender` is that of the noun counted (m, f, n)."""
    return say(cardinal_words(n, lang, gender))


def cardinal_split_words(n: int, lang: str, gender: str = "m") -> tuple[list[Word], list[Word]]:
    """`cardinal_words(n)` cut at the thousands: (the thousands and above, the rest incl. any conjunction).

    The two halves together are `cardinal_words(n)` exactly, and neither half's form depends on the other's, so
    they can be rendered and cached as separate audio segments.
    """
    full = cardinal_words(n, lang, gender)
    if n < 1000:
        return [], full
    high = cardinal_words(n - n % 1000, lang, gender)
    if n % 1000 == 0:
        return full, []
    if full[:len(high)] != high:
        return [], full  # never cut inside words that do not split cleanly
    return high, full[len(high):]


def cardinal_split(n: int, lang: str, gender: str = "m") -> tuple[str, str]:
    """`cardinal_split_words` as texts."""
    high, low = cardinal_split_words(n, lang, gender)
    return say(high), say(low)
