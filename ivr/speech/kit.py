"""The number kit: the word clips a speaker records per language so amounts, dates, months, account digits and
phone numbers can be glued from a human voice, and the fixed-prompt recordings.

The kit is not a second grammar: it is every word the shared grammar (ivr.speech.numbers/money/dates) can yield
for the phrases a message says, collected by running that grammar over a sample of numbers, amounts (every
currency asked for), dates (1990-2049) and digits. Each clip is `prompts/<lang>/kit/<key>.wav`, with the word
to say and the first sample phrase that uses it as the example sentence. Fixed prompts are
`prompts/<lang>/audio/<message>.wav` (a message without placeholders) or `<message>.<n>.wav` (the n-th fixed part
of a message with placeholders), plus `audio/company.wav` (company name in that language).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from ivr.speech.dates import date_words, months_words
from ivr.speech.money import amount_words
from ivr.speech.numbers import LANGS, cardinal_words
from ivr.speech.templates import Optional, Slot, Template, Text
from ivr.speech.words import Word, say

_LETTER = re.compile(r"\w", re.UNICODE)
_LEAD = re.compile(r"^[\s.,;:!?…—–-]+")  # punctuation left over from the placeholder before: not said
_PLUS = {"uk": "плюс", "ru": "плюс", "bg": "плюс", "en": "plus"}
# {hello}: the greeting by the local time (see ivr.speech.reading)
HELLO = {
    "uk": ("Доброго ранку", "Добрий день", "Добрий вечір"),
    "ru": ("Доброе утро", "Добрый день", "Добрый вечер"),
    "bg": ("Добро утро", "Добър ден", "Добър вечер"),
    "en": ("Good morning", "Good afternoon", "Good evening"),
}
DAYPARTS = ("morning", "day", "evening")


@dataclass(frozen=True)
class Clip:
    key: str  # file name without .wav
    text: str  # what the speaker says
    example: str  # a sentence or phrase it is used in
    folder: str = "kit"  # kit | audio

    def path(self, lang_dir: Path) -> Path:
        return lang_dir / self.folder / f"{self.key}.wav"


def hello_word(lang: str, part: str) -> Word:
    return Word(f"hello.{part}", HELLO[lang][DAYPARTS.index(part)])


def _sample_phrases(lang: str, currencies: tuple[str, ...]) -> list[list[Word]]:
    """Phrases a message says, simplest first (so each clip's example is short)."""
    out: list[list[Word]] = [[hello_word(lang, p)] for p in DAYPARTS]
    counts = [*range(0, 20), *range(20, 100, 10), 21, 22, 25, *range(100, 1000, 100), 1000, 2000, 5000, 21000,
              10**6, 2 * 10**6, 5 * 10**6, 10**9, 2 * 10**9, 5 * 10**9]
    for cur in currencies:
        for n in counts:
            out.append([w for piece in amount_words(Decimal(n), cur, lang) for w in piece])
        for cents in [*range(1, 20), *range(20, 100, 10), 21, 22, 25]:
            out.append(amount_words(Decimal(cents) / 100, cur, lang)[-1])
    out += [months_words(n, lang) for n in (1, 2, 5, 11, 21, 22)]
    day = date(2026, 1, 1)
    for month in range(1, 13):
        out.append(date_words(date(2026, month, 1), lang))
    for d in range(1, 32):
        out.append(date_words(day.replace(day=d), lang))
    for y in range(1990, 2050):
        out.append(date_words(date(y, 1, 1), lang))
    digits = {"uk": "m", "ru": "m", "bg": "n", "en": "m"}[lang]
    out += [cardinal_words(d, lang, digits) for d in range(10)]
    out += [cardinal_words(n, lang, digits) for n in range(10, 100)]  # account pairs, phone groups
    out.append([Word("plus", _PLUS[lang])])
    return out


def number_kit(lang: str, currencies: tuple[str, ...] = ("UAH",)) -> list[Clip]:
    """Every word clip of `lang`'s number kit, in the order a speaker reads them."""
    if lang not in LANGS:
        raise ValueError(f"unsupported language {lang!r}; one of {', '.join(LANGS)}")
    clips: dict[str, Clip] = {}
    for phrase in _sample_phrases(lang, currencies):
        for w in phrase:
            if w.key not in clips:
                clips[w.key] = Clip(w.key, w.text, say(phrase))
    return list(clips.values())


def fixed_parts(tpl: Template) -> list[tuple[str, Text]]:
    """(clip key, text) of every fixed part of a message a speaker records: the whole message when it has no
    placeholders, else each text between placeholders that has a word in it, numbered from 1 in text order
    (parts inside [ ] too), so the numbers do not change with the values."""
    texts: list[Text] = []
    slots = False
    for part in tpl.parts:
        inner = part.parts if isinstance(part, Optional) else (part,)
        for p in inner:
            if isinstance(p, Slot):
                slots = True
            elif isinstance(p, Text) and _LETTER.search(p.text):
                texts.append(p)
    if not slots and len(texts) == 1:
        return [(tpl.key, texts[0])]
    return [(f"{tpl.key}.{i}", t) for i, t in enumerate(texts, 1)]


def prompt_clips(templates: dict[str, Template], company: str) -> list[Clip]:
    """The fixed-prompt recordings of one language (the message as the example), and the company name."""
    out = []
    for tpl in templates.values():
        for key, text in fixed_parts(tpl):
            out.append(Clip(key, _LEAD.sub("", text.text).strip(), tpl.text, folder="audio"))
    if any("company" in t.placeholders for t in templates.values()):
        out.append(Clip("company", company, "the company name, as in the greeting", folder="audio"))
    return out
