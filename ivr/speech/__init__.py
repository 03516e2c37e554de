"""Speech: message texts staff edit, money and dates in words, TTS rendering and the prompt cache.

Public face: `Speech(cfg)` with `.check()`, `.prompt(lang, key, **values)`, `.debt_message(facts)`, returning
`Rendered(playback, duration_ms, files)`; `MessageFacts` describes one debtor's message.
"""

from ivr.speech.facts import MessageFacts
from ivr.speech.speech import Rendered, Speech

__all__ = ["MessageFacts", "Rendered", "Speech"]
