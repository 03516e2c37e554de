"""Phone numbers from billing: normalized to E.164, or kept with the reason they cannot be dialed.

`normalize(raw, region)` is cached per distinct (raw, region): parsing with `phonenumbers` costs ~20 µs, and a
million-row import repeats the same numbers (shared family numbers, re-imports of the same file). Only digits and
the usual formatting characters are accepted; letters (vanity numbers, "ext", junk) make a number invalid rather
than being silently converted to digits. Premium-rate and similar numbers are refused: a billing file must not be
able to make the dialer call a paid line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

RAW_MAX = 64  # Phone.raw column size; longer values are junk, not numbers
_ALLOWED_RE = re.compile(r"^[0-9+()\-./ \u00a0]*$")
_E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
_FORMATTING = str.maketrans("", "", "+()-./ \u00a0")  # what _ALLOWED_RE lets through besides digits

_NOT_CALLABLE = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.UAN: "a universal access (company) number",
    PhoneNumberType.VOICEMAIL: "a voicemail access number",
    PhoneNumberType.PAGER: "a pager number",
}

_POSSIBLE_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "too short (a local number without area code?)",
}


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """The verdict on one raw number: `e164` is '' when the number is invalid, and `reason` says why."""

    raw: str
    e164: str
    valid: bool
    reason: str = ""


def _invalid(raw: str, reason: str) -> PhoneResult:
    return PhoneResult(raw, "", False, reason)


@lru_cache(maxsize=1 << 16)
def normalize(raw: str, region: str) -> PhoneResult:
    """Normalize one number as billing wrote it, with `region` (ISO country) for numbers without '+'."""
    text = raw.strip()
    if not text:
        return _invalid(raw, "empty")
    if len(text) > RAW_MAX:
        return _invalid(raw[:RAW_MAX], f"longer than {RAW_MAX} characters")
    if not _ALLOWED_RE.match(text):
        return _invalid(raw, "contains characters other than digits, spaces and + - ( ) . /")
    if text.count("+") > 1 or ("+" in text and not text.startswith("+")):
        return _invalid(raw, "'+' only allowed at the start")
    digits = text.translate(_FORMATTING)
    if not digits:
        return _invalid(raw, "no digits")
    if region == "UA" and not text.startswith("+") and len(digits) == 11 and digits.startswith("80"):
        text = digits = digits[1:]  # old long-distance form "8 050 …": drop the trunk prefix 8
    fast = _fast_e164(text, digits, region)
    if fast:
        return PhoneResult(raw, fast, True, "")
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return _invalid(raw, f"not a phone number ({exc._msg})")
    kind = phonenumbers.number_type(parsed)  # UNKNOWN unless the number is in a valid range of its country
    if kind == PhoneNumberType.UNKNOWN:
        possible = phonenumbers.is_possible_number_with_reason(parsed)
        return _invalid(raw, _POSSIBLE_REASONS.get(possible, "not a valid number (no such range)"))
    if kind in _NOT_CALLABLE:
        return _invalid(raw, f"{_NOT_CALLABLE[kind]}, never dialed")
    e164 = phonenumbers.format_number(parsed, PhoneNumberFormat.E164)
    if not _E164_RE.match(e164):  # belt and braces: only [0-9+] may ever reach a dial string
        return _invalid(raw, "does not format as E.164")
    return PhoneResult(raw, e164, True, "")


@dataclass(frozen=True)
class _RegionPatterns:
    country_code: str
    national_prefix: str
    callable: re.Pattern[str]  # general description AND (mobile OR fixed line)
    others: re.Pattern[str] | None  # every type number_type() tests before fixed line and mobile


def _any_of(descs: tuple[Any, ...]) -> str:
    pats = [d.national_number_pattern for d in descs if d is not None and d.national_number_pattern]
    return "|".join(f"(?:{p})" for p in pats)


@lru_cache(maxsize=64)
def _patterns(region: str) -> _RegionPatterns | None:
    md = PhoneMetadata.metadata_for_region(region)
    if md is None or md.general_desc is None or md.national_prefix_transform_rule:
        return None
    prefix = md.national_prefix or ""
    if not prefix.isdigit() or md.national_prefix_for_parsing not in (None, prefix):
        return None
    callable_ = _any_of((md.mobile, md.fixed_line))
    if not callable_ or not md.general_desc.national_number_pattern:
        return None
    others = _any_of((md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number, md.pager,
                      md.uan, md.voicemail))
    return _RegionPatterns(str(md.country_code), prefix,
                           re.compile(f"(?=(?:{md.general_desc.national_number_pattern})$)(?:{callable_})"),
                           re.compile(others) if others else None)


def _fast_e164(text: str, digits: str, region: str) -> str:
    """The E.164 form of an ordinary mobile or fixed-line number of `region` written '+<cc>…' or '<prefix>…',
    checked against the same metadata patterns phonenumbers uses but ~5x faster; '' means "ask phonenumbers"
    (anything unusual goes the slow, complete way; a test checks both ways agree)."""
    pat = _patterns(region)
    if pat is None:
        return ""
    if text[0] == "+":
        if not digits.startswith(pat.country_code):
            return ""
        nsn = digits[len(pat.country_code):]
    elif pat.national_prefix and digits.startswith(pat.national_prefix):
        nsn = digits[len(pat.national_prefix):]
    else:
        return ""
    if not nsn or nsn[0] == "0" or not pat.callable.fullmatch(nsn):
        return ""
    if pat.others is not None and pat.others.fullmatch(nsn):
        return ""
    return f"+{pat.country_code}{nsn}"


@lru_cache(maxsize=16)
def _separator_re(separators: str) -> re.Pattern[str]:
    return re.compile("[" + re.escape(separators) + "]")


def split_numbers(field: str, separators: str) -> list[str]:
    """Several numbers in one field, split on any of the `separators` characters; empty parts dropped."""
    parts = [field] if not separators else _separator_re(separators).split(field)
    return [p.strip() for p in parts if p.strip()]


@lru_cache(maxsize=4096)
def national_digits(e164: str) -> str:
    """The number as dialed inside its own country (dialing.number_format = national): '+380501234567' ->
    '0501234567'. Digits only; raises ValueError for anything that is not a valid E.164 number."""
    if not _E164_RE.match(e164):
        raise ValueError(f"not an E.164 number: {e164!r}")
    parsed = phonenumbers.parse(e164, None)
    national = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
    digits = re.sub(r"[^0-9]", "", national)
    if not digits:
        raise ValueError(f"no national form for {e164!r}")
    return digits


def dial_digits(e164: str, number_format: str) -> str:
    """What goes in the dial string's {number} for `dialing.number_format` (e164 | e164_digits | national)."""
    if not _E164_RE.match(e164):
        raise ValueError(f"not an E.164 number: {e164!r}")
    if number_format == "e164":
        return e164
    if number_format == "e164_digits":
        return e164[1:]
    if number_format == "national":
        return national_digits(e164)
    raise ValueError(f"unknown number format {number_format!r}; expected e164, e164_digits or national")
