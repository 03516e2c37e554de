"""Natural reading, whatever the engine: how a greeting, an office phone and an account number are said.

- `daypart`: {hello} follows the local time (locale.timezone): morning, then day from speech.day_from, evening
  from speech.evening_from ("Добрий день" / "Добрий вечір").
- `phone_groups`: the office phone as people say it: a number of the home country (locale.country) in its
  national form with the trunk prefix (0 44 in Ukraine), cut into speech.phone_groups (3-3-2-2: "нуль сорок
  чотири, сто двадцять три, сорок п'ять, шістдесят сім"); another country's number starts with "плюс" and its
  country code digit by digit. A group starting with 0 says its leading zeros one by one ("нуль п'ять"); English says every digit
  alone, with the pauses between the groups.
- `account_groups`: account numbers digit by digit, or in pairs (speech.account_reading), letters alone.
All yield word tokens of the shared grammar, so the recorded engine says them from the number kit.
"""

from __future__ import annotations

from datetime import datetime

import phonenumbers

from ivr.speech.numbers import cardinal_words, unit
from ivr.speech.words import Word

DIGIT_GENDER = {"uk": "m", "ru": "m", "bg": "n", "en": "m"}  # digits said alone: один (uk, ru), едно (bg)
PLUS = {"uk": "плюс", "ru": "плюс", "bg": "плюс", "en": "plus"}


def daypart(now: datetime, day_from: str, evening_from: str) -> str:
    """morning | day | evening for the local time `now` (times 'HH:MM')."""
    hhmm = now.strftime("%H:%M")
    if hhmm >= evening_from:
        return "evening"
    return "day" if hhmm >= day_from else "morning"


def digits_group(digits: str, lang: str) -> list[Word]:
    """A group of digits as people say it: leading zeros one by one, the rest as one number (123 → сто двадцять
    три, 05 → нуль п'ять)."""
    g = DIGIT_GENDER[lang]
    zeros = len(digits) - len(digits.lstrip("0"))
    out = [unit(0, lang, g)] * zeros
    if digits.lstrip("0"):
        out += cardinal_words(int(digits), lang, g)
    return out


def _cut(digits: str, sizes: list[int]) -> list[str]:
    """`digits` cut into `sizes` from the left; what is left over goes in pairs (a single digit last)."""
    out, pos = [], 0
    for size in sizes:
        if pos >= len(digits):
            break
        out.append(digits[pos:pos + size])
        pos += size
    while pos < len(digits):
        out.append(digits[pos:pos + 2])
        pos += 2
    if len(out) > 1 and len(out[-1]) == 1 and len(out[-2]) == 2 and pos > sum(sizes):
        out[-2:] = [out[-2] + out[-1]]  # no lone digit at the end of leftover pairs: "… 123"
    return out


def phone_groups(number: str, lang: str, country: str, groups: str) -> list[list[Word]]:
    """The phone number as groups of words (see the module doc)."""
    sizes = [int(s) for s in groups.split("-")]
    prefix: list[list[Word]] = []
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None and phonenumbers.is_possible_number(parsed):
        national = str(parsed.national_number)
        if phonenumbers.region_code_for_number(parsed) == country:
            # the national form as the country writes it: 044 123 4567 (UA), (212) 555-1234 (US)
            formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
            national = "".join(ch for ch in formatted if ch.isdigit()) or national
        else:
            code = [unit(int(d), lang, DIGIT_GENDER[lang]) for d in str(parsed.country_code)]
            prefix = [[Word("plus", PLUS[lang])] + code]  # country codes go digit by digit: плюс три п'ять дев'ять
        digits = national
    else:
        digits = "".join(ch for ch in number if ch.isdigit())
    if lang == "en":  # English says phone digits one by one, grouped: "two one two, five five five, …"
        return prefix + [[unit(int(d), lang) for d in part] for part in _cut(digits, sizes)]
    return prefix + [digits_group(part, lang) for part in _cut(digits, sizes)]


def account_groups(text: str, lang: str, mode: str) -> list[list[Word]]:
    """An account number as groups said with a pause between them: each digit, or pairs of digits (`mode`
    digits | pairs); letters one by one (clip `letter.X`, said by TTS unless recorded); separators dropped."""
    out: list[list[Word]] = []
    run = ""

    def flush() -> None:
        nonlocal run
        step = 2 if mode == "pairs" else 1
        out.extend(digits_group(run[i:i + step], lang) for i in range(0, len(run), step))
        run = ""

    for ch in text:
        if ch.isdigit() and ch.isascii():
            run += ch
            continue
        flush()
        if ch.isalpha():
            out.append([Word(f"letter.{ch.upper()}", ch.upper())])
        elif ch == "+":
            out.append([Word("plus", PLUS[lang])])
    flush()
    return out
