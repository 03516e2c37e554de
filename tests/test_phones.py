"""Phone numbers: E.164 normalization with the default region, reasons for invalid ones, national digits."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from ivr.ledger import phones
from ivr.ledger.phones import dial_digits, national_digits, normalize, split_numbers


@pytest.mark.parametrize("raw", ["+380501234567", "0501234567", "380501234567", "(050) 123-45-67",
                                 "050 123 45 67", "+38 050 123 45 67", "8 050 123 45 67", "00380501234567"])
def test_ukrainian_mobile_in_the_ways_billing_writes_it(raw):
    r = normalize(raw, "UA")
    assert (r.e164, r.valid, r.reason) == ("+380501234567", True, "")


def test_default_region_decides_numbers_without_country_code():
    assert normalize("0888123456", "BG").e164 == "+359888123456"
    assert normalize("0888123456", "UA").valid is False


def test_foreign_numbers_with_plus_are_kept():
    assert normalize("+359 88 812 3456", "UA").e164 == "+359888123456"


@pytest.mark.parametrize("raw, reason", [
    ("", "empty"),
    ("12345", "too short"),
    ("+38050123456789", "too long"),
    ("+380 50 CALL ME", "characters other than digits"),
    ("0501234567 ext 5", "characters other than digits"),
    ("050\r\n1234567", "characters other than digits"),
    ("{050}1234567", "characters other than digits"),
    ("050+1234567", "'+' only allowed at the start"),
    ("+1 900 555 1234", "premium-rate"),
    ("0" * 80, "longer than 64"),
    ("0900123456", "not a valid number"),
])
def test_invalid_numbers_are_kept_with_the_reason(raw, reason):
    r = normalize(raw, "UA")
    assert r.valid is False and r.e164 == ""
    assert reason in r.reason


def test_each_distinct_number_is_parsed_once(monkeypatch):
    normalize.cache_clear()
    calls = []
    real = phones.phonenumbers.parse
    monkeypatch.setattr(phones.phonenumbers, "parse", lambda *a, **k: calls.append(a) or real(*a, **k))
    for _ in range(3):
        assert normalize("+1 650 253 0000", "UA").valid
    assert len(calls) == 1
    assert normalize.cache_info().hits >= 2


def _reference(raw: str, region: str) -> tuple[str, str, str]:
    """What phonenumbers alone says (the slow path): E.164, country and type, for comparing with the fast path."""
    try:
        p = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return "", "", ""
    kind = phonenumbers.number_type(p)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN or kind in phones._NOT_CALLABLE:
        return "", "", ""
    return (phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.region_code_for_number(p), phones.TYPE_NAMES.get(kind, "other"))


def test_fast_path_agrees_with_phonenumbers_on_random_numbers():
    rnd = random.Random(20261123)
    fast_hits = 0
    for region in ("UA", "BG", "RU", "US", "DE"):
        for _ in range(800):
            d = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(6, 12)))
            raw = rnd.choice(["+" + d, "0" + d, d, "+380" + d[:9], "0" + rnd.choice(["50", "67", "44", "90"]) + d[:7],
                              "+359" + d[:9], "+7" + d[:10]])
            normalize.cache_clear()
            digits = "".join(c for c in raw if c.isdigit())
            fast_hits += bool(phones._fast_e164(raw, digits, region))
            r = normalize(raw, region)
            assert (r.e164, r.region, r.kind) == _reference(raw, region), (raw, region)
    assert fast_hits > 150  # the fast path is really exercised


def test_split_numbers_on_any_separator_character():
    assert split_numbers("050 123 45 67; 067 765 43 21|+380441234567,", ";|,") == [
        "050 123 45 67", "067 765 43 21", "+380441234567"]
    assert split_numbers("", ";") == []


def test_national_digits_and_dial_formats():
    assert national_digits("+380501234567") == "0501234567"
    assert national_digits("+359888123456") == "0888123456"
    assert dial_digits("+380501234567", "e164") == "+380501234567"
    assert dial_digits("+380501234567", "e164_digits") == "380501234567"
    assert dial_digits("+380501234567", "national") == "0501234567"
    for bad in ("0501234567", "+38050123456x", "+380501234567\r\n", ""):
        with pytest.raises(ValueError):
            dial_digits(bad, "e164")
    with pytest.raises(ValueError):
        dial_digits("+380501234567", "intl")
