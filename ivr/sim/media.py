"""How long a playback lasts: WAV lengths read from the file header (cached), `file_string://` lists, and
the playback variables FreeSWITCH sets afterwards.

Real-server facts (README "Playback"): played to the end → `playback_ms` exact; stopped early (hang-up or
terminator) → `playback_ms` rounded UP to 2048-ms blocks while `playback_last_offset_pos` is the real position
in 8 kHz samples (whole 20-ms frames). A `file_string://a!b!c` list played to the end reported 11250 ms for
11000 ms of audio and 4346 ms when stopped 2.96 s in; we model that as +125 ms per segment boundary
(derived from that single list — unverified for other lengths).
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path

RATE = 8000
FRAME = 160  # samples in one 20-ms frame at 8 kHz
BLOCK_MS = 2048
SEGMENT_PAD_MS = 125

_cache: dict[str, tuple[float, int]] = {}


@dataclass(frozen=True)
class Media:
    path: str  # what the app was given (Playback-File-Path)
    ms: int  # audio length
    segments: int = 1

    @property
    def pad_ms(self) -> int:
        return SEGMENT_PAD_MS * (self.segments - 1)


def wav_ms(path: str, base: Path | None = None) -> int | None:
    """Length of a WAV file in ms, or None when it does not exist or is not a readable WAV."""
    p = Path(path)
    if not p.is_absolute() and base is not None:
        p = base / p
    try:
        mtime = os.stat(p).st_mtime
    except OSError:
        return None
    key = str(p)
    hit = _cache.get(key)
    if hit and hit[0] == mtime:
        return hit[1]
    try:
        with wave.open(str(p), "rb") as w:
            ms = int(round(w.getnframes() * 1000 / w.getframerate()))
    except (wave.Error, EOFError, OSError):
        return None
    if len(_cache) > 10000:
        _cache.clear()
    _cache[key] = (mtime, ms)
    return ms


def resolve(arg: str, base: Path | None = None) -> Media | None:
    """The media a `playback` argument names, or None for FILE NOT FOUND."""
    arg = arg.strip()
    if arg.startswith("silence_stream://"):
        try:
            return Media(arg, max(0, int(arg.split("://", 1)[1].split(",")[0])))
        except ValueError:
            return None
    if arg.startswith("file_string://"):
        parts = [p for p in arg[len("file_string://"):].split("!") if p]
        lengths = [wav_ms(p, base) for p in parts]
        if not parts or any(n is None for n in lengths):
            return None  # unverified: the real server may skip a missing segment instead
        return Media(arg, sum(lengths), len(parts))
    ms = wav_ms(arg, base)
    return None if ms is None else Media(arg, ms)


def playback_vars(media: Media, elapsed_s: float | None, in_menu: bool = False) -> list[tuple[str, str]]:
    """playback_* variables after a playback; `elapsed_s` None = played to the end."""
    if elapsed_s is None:
        ms = media.ms + media.pad_ms
        offset = ms * RATE // 1000
    else:
        pos = int(elapsed_s * RATE) // FRAME * FRAME
        offset = min(pos, (media.ms + media.pad_ms) * RATE // 1000)
        # Inside play_and_get_digits a broken prompt still reported the whole file (menu.wav: 3000 ms).
        ms = media.ms if in_menu else math.ceil(max(elapsed_s, 0.001) * 1000 / BLOCK_MS) * BLOCK_MS + media.pad_ms
    return [("playback_last_offset_pos", str(offset)), ("playback_seconds", str(ms // 1000)),
            ("playback_ms", str(ms)), ("playback_samples", str(ms * RATE // 1000))]
