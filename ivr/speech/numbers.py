"""Whole numbers in words per language, with grammatical gender, split at the thousands for segmenting.

Ukrainian, Russian and English come from num2words. Two of its defects are worked around here: Russian
`gender='f'` also feminizes millions ("одна миллион"), so only the last group below a thousand is asked for in
the feminine; Bulgarian is not implemented at all in num2words 0.5.14 (NotImplementedError), so Bulgarian is
our own code below (with the conjunction "и" placed the way Bulgarian places it).
"""

from __future__ import annotations

from num2words import num2words

LANGS = ("uk", "ru", "bg", "en")
GENDERS = ("m", "f", "n")


def plural_form(n: int, lang: str) -> int:
    """Which noun form follows the number: 0 = one, 1 = few (2-4), 2 = many (uk/ru); bg/en: 0 = one, 2 = other."""
    if lang in ("uk", "ru"):
        if n % 10 == 1 and n % 100 != 11:
            return 0
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return 1
        return 2
    return 0 if n == 1 else 2


def _slavic(n: int, lang: str, gender: str) -> str:
    low = n % 1000
    high = n - low
    kw = {"uk": {"f": {"gender": "feminine"}, "n": {"gender": "neuter"}},
          "ru": {"f": {"gender": "f"}, "n": {"gender": "n"}}}[lang].get(gender, {})
    parts = []
    if high:
        parts.append(num2words(high, lang=lang))
    if low or not high:
        parts.append(num2words(low, lang=lang, **kw))
    return " ".join(parts)


# --- Bulgarian ---------------------------------------------------------------------------------------------------

_BG_UNITS = ["нула", "един", "два", "три", "четири", "пет", "шест", "седем", "осем", "девет", "десет",
             "единадесет", "дванадесет", "тринадесет", "четиринадесет", "петнадесет", "шестнадесет",
             "седемнадесет", "осемнадесет", "деветнадесет"]
_BG_TENS = ["", "", "двадесет", "тридесет", "четиридесет", "петдесет", "шестдесет", "седемдесет", "осемдесет",
            "деветдесет"]
_BG_HUNDREDS = ["", "сто", "двеста", "триста", "четиристотин", "петстотин", "шестстотин", "седемстотин",
                "осемстотин", "деветстотин"]
_BG_SCALES = [  # (value, singular, plural, gender of the scale noun)
    (10**9, "милиард", "милиарда", "m"),
    (10**6, "милион", "милиона", "m"),
    (10**3, "хиляда", "хиляди", "f"),
]


def _bg_unit(u: int, gender: str) -> str:
    if u == 1:
        return {"m": "един", "f": "една", "n": "едно"}[gender]
    if u == 2:
        return "два" if gender == "m" else "две"
    return _BG_UNITS[u]


def _bg_group(n: int, gender: str) -> list[str]:
    """Components of 1..999 (without the conjunction)."""
    parts = []
    h, rest = divmod(n, 100)
    if h:
        parts.append(_BG_HUNDREDS[h])
    if rest >= 20:
        t, u = divmod(rest, 10)
        parts.append(_BG_TENS[t])
        if u:
            parts.append(_bg_unit(u, gender))
    elif rest:
        parts.append(_bg_unit(rest, gender) if rest <= 2 else _BG_UNITS[rest])
    return parts


def _bg_join(parts: list[str]) -> str:
    """'и' goes before the last component of a group: сто двадесет и пет, сто и пет."""
    if len(parts) > 1:
        return " ".join(parts[:-1]) + " и " + parts[-1]
    return parts[0] if parts else ""


def bg_cardinal(n: int, gender: str = "m") -> str:
    if n == 0:
        return "нула"
    groups: list[tuple[str, int]] = []  # (words, number of components)
    rest = n
    for value, one, many, g in _BG_SCALES:
        count, rest = divmod(rest, value)
        if not count:
            continue
        if count == 1:
            words, comps = ("хиляда" if value == 1000 else f"един {one}"), 1
        else:
            count_parts = _bg_group(count, g)
            words, comps = f"{_bg_join(count_parts)} {many}", len(count_parts)
        groups.append((words, comps))
    if rest:
        comps = _bg_group(rest, gender)
        groups.append((_bg_join(comps), len(comps)))
    # Between groups 'и' only before a last group said with one numeral: хиляда и пет, милион и двеста хиляди,
    # but хиляда сто и пет.
    if len(groups) > 1 and groups[-1][1] == 1:
        return " ".join(w for w, _ in groups[:-1]) + " и " + groups[-1][0]
    return " ".join(w for w, _ in groups)


# --- all languages -----------------------------------------------------------------------------------------------

def cardinal(n: int, lang: str, gender: str = "m") -> str:
    """`n` (>= 0) in words; `gender` is that of the noun counted (m, f, n)."""
    if n < 0:
        raise ValueError(f"negative number {n}")
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")
    if lang == "bg":
        return bg_cardinal(n, gender)
    if lang == "en":
        return num2words(n, lang="en").replace(",", "")
    return _slavic(n, lang, gender)


def cardinal_split(n: int, lang: str, gender: str = "m") -> tuple[str, str]:
    """`cardinal(n)` cut at the thousands: (words of the thousands and above, the rest incl. any conjunction).

    Joining the two with a space gives `cardinal(n)` exactly, and neither half's form depends on the other's
    rendering, so they can be rendered and cached as separate audio segments.
    """
    full = cardinal(n, lang, gender)
    if n < 1000:
        return "", full
    high = cardinal(n - n % 1000, lang, gender)
    if n % 1000 == 0:
        return full, ""
    if not full.startswith(high + " "):
        return "", full  # never cut inside words that do not split cleanly
    return high, full[len(high) + 1:]
