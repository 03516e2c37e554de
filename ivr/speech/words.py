"""Word tokens: what the number grammar yields, shared by the TTS path and the recorded number kit.

A `Word` is one spoken word with the kit clip that says it (`key`, e.g. `2f` for "дві", `uah.few` for "гривні").
The TTS path joins the texts (`say`); the recorded path plays the clips named by the keys. Both read the same
tokens, so a form the grammar gets right is right in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    key: str  # the number-kit clip that says this word (prompts/<lang>/kit/<key>.wav)
    text: str  # the word as the TTS engine gets it
    sep: str = " "  # what joins it to the word before: a space, or "-" in English compounds ("twenty-one")


def say(words: Iterable[Word]) -> str:
    """The words as one text: 'двадцять одна гривня', 'twenty-one dollars'."""
    out = ""
    for w in words:
        out = f"{out}{w.sep}{w.text}" if out else w.text
    return out
