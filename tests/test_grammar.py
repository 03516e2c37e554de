"""The one number grammar both speech paths share: word tokens that agree with num2words and name their clips."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from num2words import num2words

from ivr.speech.dates import date_words, months_words
from ivr.speech.money import CURRENCIES, amount_words
from ivr.speech.numbers import LANGS, cardinal, cardinal_words
from ivr.speech.words import Word, say

_rng = random.Random(14)
SAMPLE = list(range(0, 1200)) + [_rng.randrange(0, 10**12) for _ in range(600)] + [
    10**6, 10**9, 2 * 10**9 + 1, 1_000_100, 2_001_000, 1_000_021, 999_999_999_999]


def _num2words_slavic(n: int, lang: str, gender: str) -> str:
    # the previous implementation: num2words for the thousands and above, the gendered rest on its own
    kw = {"uk": {"f": {"gender": "feminine"}}, "ru": {"f": {"gender": "f"}}}[lang].get(gender, {})
    low, high = n % 1000, n - n % 1000
    return " ".join(([num2words(high, lang=lang)] if high else []) +
                    ([num2words(low, lang=lang, **kw)] if low or not high else []))


@pytest.mark.parametrize(("lang", "gender"), [("uk", "m"), ("uk", "f"), ("ru", "m"), ("ru", "f"), ("en", "m")])
def test_our_tables_say_what_num2words_says(lang, gender):
    for n in SAMPLE:
        ref = num2words(n, lang="en").replace(",", "") if lang == "en" else _num2words_slavic(n, lang, gender)
        assert cardinal(n, lang, gender) == ref, n


def _every_phrase(lang: str) -> list[list[Word]]:
    out: list[list[Word]] = []
    for n in SAMPLE[:1200:7] + SAMPLE[1200:]:
        for g in ("m", "f", "n"):
            out.append(cardinal_words(n, lang, g))
    for cur in CURRENCIES:
        for amount in ("0.01", "1.02", "2.05", "5.11", "21.21", "1001.50", "2000000.99"):
            out.extend(amount_words(Decimal(amount), cur, lang))
    day = date(1999, 1, 1)
    while day < date(2031, 1, 1):
        out.append(date_words(day, lang))
        day += timedelta(days=13)
    out += [months_words(n, lang) for n in range(0, 40)]
    return out


@pytest.mark.parametrize("lang", LANGS)
def test_one_clip_always_says_the_same_word(lang):
    said: dict[str, str] = {}
    for phrase in _every_phrase(lang):
        for w in phrase:
            assert w.key and w.text, w
            assert said.setdefault(w.key, w.text) == w.text, f"clip {w.key} says both {said[w.key]} and {w.text}"
    assert len(said) > 60


def test_english_compounds_are_joined_by_a_hyphen_but_are_two_clips():
    words = cardinal_words(21, "en")
    assert [w.key for w in words] == ["20", "1"] and say(words) == "twenty-one"
    assert [w.key for w in date_words(date(2026, 11, 23), "en")] == ["month.11", "20", "ord.3", "20", "20", "6"]


def test_gendered_numerals_name_the_form():
    assert [w.key for w in cardinal_words(2, "uk", "f")] == ["2f"]
    assert [w.key for w in cardinal_words(2, "uk", "n")] == ["2m"]  # два: the same word as the masculine
    assert [w.key for w in cardinal_words(2, "bg", "n")] == ["2f"]  # две
    assert [w.key for w in cardinal_words(5000, "uk")] == ["5", "thousand.many"]
    assert [w.key for w in cardinal_words(1_001_000, "bg")] == ["1m", "million.one", "and", "thousand.one"]


def test_too_large_or_negative():
    with pytest.raises(ValueError, match="too large"):
        cardinal(10**12, "uk")
    with pytest.raises(ValueError, match="negative"):
        cardinal(-1, "en")
