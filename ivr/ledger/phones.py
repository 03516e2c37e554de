"""Phone numbers from billing: normalized to E.164, or kept with the reason they cannot be dialed.

`normalize(raw, region)` is cached per distinct (raw, region): parsing with `phonenumbers` costs ~20 µs, and a
million-row import repeats the same numbers (shared family numbers, re-imports of the same file). Only digits and
the usual formatting characters are accepted; letters (vanity numbers, "ext", junk) make a number invalid rather
than being silently converted to digits. Premium-rate and similar numbers are refused: a billing file must not be
able to make the dialer call a paid line.

Which valid numbers may be dialled is the utility's policy (`DialPolicy`, from `dialing.allowed_countries` and
`dialing.number_types`, phonenumbers' own number types): `apply_policy` turns a refused number into an invalid one
with the reason (at import), and `dial_refusal` answers the same for a number already in the ledger (eligibility
and the queue ask it before every dial, so a narrower config applies without a re-import).
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


# phonenumbers' types by the names config uses (dialing.number_types)
TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line", PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile", PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.VOIP: "voip", PhoneNumberType.PERSONAL_NUMBER: "personal_number",
}
ALLOWABLE_TYPES = ("mobile", "fixed_line", "toll_free", "voip", "personal_number")
_TYPE_WORDS = {"fixed_line": "a fixed-line number", "mobile": "a mobile number", "toll_free": "a toll-free number",
               "voip": "a VoIP number", "personal_number": "a personal (follow-me) number",
               "fixed_line_or_mobile": "a fixed-line or mobile number"}


@dataclass(frozen=True, slots=True)
class PhoneResult:
    """The verdict on one raw number: `e164` is '' when the number is invalid, and `reason` says why. A valid
    number carries its `region` (ISO country) and `kind` (a TYPE_NAMES value)."""

    raw: str
    e164: str
    valid: bool
    reason: str = ""
    region: str = ""
    kind: str = ""


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
    fast, fast_kind = _fast_parse(text, digits, region)
    if fast:
        return PhoneResult(raw, fast, True, "", region, fast_kind)
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
    return PhoneResult(raw, e164, True, "", phonenumbers.region_code_for_number(parsed) or "",
                       TYPE_NAMES.get(kind, "other"))


@dataclass(frozen=True)
class _RegionPatterns:
    country_code: str
    national_prefix: str
    callable: re.Pattern[str]  # general description AND (mobile OR fixed line)
    others: re.Pattern[str] | None  # every type number_type() tests before fixed line and mobile
    fixed: re.Pattern[str] | None  # fixed line alone, to tell the type as number_type() does
    mobile: re.Pattern[str] | None
    same_fixed_and_mobile: bool


def _any_of(descs: tuple[Any, ...]) -> str:
    pats = [d.national_number_pattern for d in descs if d is not None and d.national_number_pattern]
    return "|".join(f"(?:{p})" for p in pats)


@lru_cache(maxsize=64)
def _patterns(region: str) -> _RegionPatterns | None:
    md = PhoneMetadata.metadata_for_region(region)
    if md is None or md.general_desc is None or md.national_prefix_transform_rule:
        return None
    if len(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(md.country_code, ())) != 1:
        return None  # a shared country code (+7, +1): only phonenumbers can tell which country a number is in
    prefix = md.national_prefix or ""
    if not prefix.isdigit() or md.national_prefix_for_parsing not in (None, prefix):
        return None
    callable_ = _any_of((md.mobile, md.fixed_line))
    if not callable_ or not md.general_desc.national_number_pattern:
        return None
    others = _any_of((md.premium_rate, md.toll_free, md.shared_cost, md.voip, md.personal_number, md.pager,
                      md.uan, md.voicemail))
    fixed, mobile = _any_of((md.fixed_line,)), _any_of((md.mobile,))
    return _RegionPatterns(str(md.country_code), prefix,
                           re.compile(f"(?=(?:{md.general_desc.national_number_pattern})$)(?:{callable_})"),
                           re.compile(others) if others else None,
                           re.compile(fixed) if fixed else None, re.compile(mobile) if mobile else None,
                           bool(md.same_mobile_and_fixed_line_pattern))


def _fast_e164(text: str, digits: str, region: str) -> str:
    """The E.164 form of an ordinary mobile or fixed-line number of `region` written '+<cc>…' or '<prefix>…',
    checked against the same metadata patterns phonenumbers uses but ~5x faster; '' means "ask phonenumbers"
    (anything unusual goes the slow, complete way; a test checks both ways agree)."""
    return _fast_parse(text, digits, region)[0]


def _fast_parse(text: str, digits: str, region: str) -> tuple[str, str]:
    """(E.164, type name) by the fast path, or ('', '') for "ask phonenumbers"."""
    pat = _patterns(region)
    if pat is None:
        return "", ""
    if text[0] == "+":
        if not digits.startswith(pat.country_code):
            return "", ""
        nsn = digits[len(pat.country_code):]
    elif pat.national_prefix and digits.startswith(pat.national_prefix):
        nsn = digits[len(pat.national_prefix):]
    else:
        return "", ""
    if not nsn or nsn[0] == "0" or not pat.callable.fullmatch(nsn):
        return "", ""
    if pat.others is not None and pat.others.fullmatch(nsn):
        return "", ""
    fixed = pat.fixed is not None and pat.fixed.fullmatch(nsn) is not None
    mobile = pat.mobile is not None and pat.mobile.fullmatch(nsn) is not None
    if fixed and (pat.same_fixed_and_mobile or mobile):
        kind = "fixed_line_or_mobile"
    elif fixed:
        kind = "fixed_line"
    elif mobile and not pat.same_fixed_and_mobile:
        kind = "mobile"
    else:
        return "", ""
    return f"+{pat.country_code}{nsn}", kind


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


# --- which valid numbers may be dialled ------------------------------------------------------------------------

@dataclass(frozen=True)
class DialPolicy:
    """Countries (ISO codes) and number types (TYPE_NAMES values) that may be dialled."""

    countries: frozenset[str]
    types: frozenset[str]

    def refusal(self, region: str, kind: str) -> str:
        """Why a valid number of `region` and `kind` may not be dialled ('' = it may)."""
        if region not in self.countries:
            return (f"a number of {region or 'an unknown country'}, not dialled "
                    f"(dialing.allowed_countries: {', '.join(sorted(self.countries))})")
        allowed = self.types
        if kind == "fixed_line_or_mobile" and ({"fixed_line", "mobile"} & allowed):
            return ""
        if kind not in allowed:
            return (f"{_TYPE_WORDS.get(kind, 'a number of a type not allowed')}, not dialled "
                    f"(dialing.number_types: {', '.join(sorted(allowed))})")
        return ""


def dial_policy(cfg: Any) -> DialPolicy:
    """The policy of a Config: `dialing.allowed_countries` ([] = `locale.country` only) and `dialing.number_types`."""
    return _policy(tuple(cfg.dialing.allowed_countries) or (cfg.locale.country,), tuple(cfg.dialing.number_types))


@lru_cache(maxsize=16)
def _policy(countries: tuple[str, ...], types: tuple[str, ...]) -> DialPolicy:
    return DialPolicy(frozenset(countries), frozenset(types))


def apply_policy(result: PhoneResult, policy: DialPolicy) -> PhoneResult:
    """`result` unchanged when it may be dialled; otherwise an invalid result whose reason says why."""
    if not result.valid:
        return result
    why = policy.refusal(result.region, result.kind)
    return _invalid(result.raw, why) if why else result


@lru_cache(maxsize=1 << 16)
def number_facts(e164: str, hint: str = "") -> tuple[str, str]:
    """(region, type name) of a stored E.164 number ('', '' when it no longer parses as a valid number);
    `hint`: a region to try the fast path with first (the usual country)."""
    if hint:
        fast, kind = _fast_parse(e164, e164[1:], hint)
        if fast == e164:
            return hint, kind
    r = normalize(e164, hint or "ZZ")
    return (r.region, r.kind) if r.valid else ("", "")


def dial_refusal(e164: str, policy: DialPolicy) -> str:
    """Why a number stored as valid may not be dialled under `policy` ('' = it may)."""
    hint = next(iter(policy.countries)) if len(policy.countries) == 1 else ""
    region, kind = number_facts(e164, hint)
    if not region:
        return "not a valid number"
    return policy.refusal(region, kind)
