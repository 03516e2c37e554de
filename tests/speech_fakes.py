"""A fake TTS engine for speech tests: writes a tone whose length follows the text, counting its calls."""

from __future__ import annotations

import errno
import math
import struct
import wave
from pathlib import Path


def write_tone(out: Path, seconds: float, rate: int = 22050, channels: int = 1, amplitude: float = 0.3,
               pad_s: float = 0.1, freq: float = 440.0) -> None:
    """A tone of `seconds` with `pad_s` of silence before and after."""
    pad = [0] * int(pad_s * rate)
    tone = [int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(seconds * rate))]
    samples = pad + tone + pad
    with wave.open(str(out), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<" + "h" * channels, *([s] * channels)) for s in samples))


class FakeEngine:
    name = "fake"

    def __init__(self, amplitude: float = 0.3, fail_errno: int | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.amplitude = amplitude
        self.fail_errno = fail_errno

    def synth(self, text: str, voice: str, out: Path) -> None:
        self.calls.append((text, voice))
        if self.fail_errno is not None:
            raise OSError(self.fail_errno, "No space left on device" if self.fail_errno == errno.ENOSPC else "x")
        write_tone(out, 0.05 + 0.01 * len(text), rate=22050, channels=2, amplitude=self.amplitude)
