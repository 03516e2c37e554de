"""A speech stand-in of fixed-length silent WAVs, for benchmarks and fault scripts that measure the dialer.

It answers the same calls the call flow makes of Speech (debt_message, prompt, plan), so a run exercises every
real path except the TTS engine, whose cost would otherwise hide the dialer's.
"""

from __future__ import annotations

import wave
from pathlib import Path

from ivr.speech.speech import Rendered

MESSAGE = "msg.wav"
PROMPT = "prompt.wav"


def silent_wav(path: Path, seconds: float) -> None:
    """8 kHz mono 16-bit silence of `seconds`: the format FreeSWITCH (and the simulator) read."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))


class SilentSpeech:
    """Every message `message_s` long, every prompt `prompt_s`; files in `work` (see write_files)."""

    def __init__(self, work: Path, message_s: float, prompt_s: float) -> None:
        self.msg = Rendered(str(work / MESSAGE), int(message_s * 1000), [work / MESSAGE])
        self.prm = Rendered(str(work / PROMPT), int(prompt_s * 1000), [work / PROMPT])

    @staticmethod
    def write_files(work: Path, message_s: float, prompt_s: float) -> None:
        """Write the two WAVs once, before any process plays them (rewriting one mid-run could be read half-done)."""
        silent_wav(work / MESSAGE, message_s)
        silent_wav(work / PROMPT, prompt_s)

    def debt_message(self, facts):  # noqa: ANN001, ANN201
        return self.msg

    def prompt(self, lang, key, **values):  # noqa: ANN001, ANN003, ANN201
        return self.prm

    def plan(self, lang, key, **values):  # noqa: ANN001, ANN003, ANN201
        return []  # the same for every debtor: no prompt says a name (see ivr.callflow.context.names_debtor)
