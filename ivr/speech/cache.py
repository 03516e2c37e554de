"""The prompt cache: rendered audio segments on disk, keyed by engine, voice and text.

- Key = sha256(engine name, voice, text, render version); file `seg/<k[:2]>/<k>.wav`. The duration is stored in
  the WAV header itself (frame count at 8 kHz), read once and kept in memory.
- Safe with several processes: every file is written to a temporary name in its final folder and renamed into
  place (atomic on one file system); two processes rendering the same key both write identical audio and the
  last rename wins, so a reader never sees half a file.
- Bounded: when the files exceed `max_bytes` the least recently used are deleted (mtime is the use stamp,
  refreshed at most every TOUCH_EVERY_S per process) down to 90 % of the bound; files used within PROTECT_S are
  never evicted, since a call may be playing them right now.
- Disk full or an unwritable folder is an IvrError naming the folder and the setting to change.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.errors import IvrError
from ivr.speech import tts

log = logging.getLogger(__name__)

RENDER_VERSION = "2"  # bump when tts.to_phone_audio changes, so old audio is not reused
TOUCH_EVERY_S = 600.0
PROTECT_S = 1800.0


class CacheError(IvrError):
    """The prompt cache folder cannot be written."""


@dataclass(frozen=True)
class Segment:
    path: Path
    frames: int  # at tts.RATE

    @property
    def duration_ms(self) -> int:
        return round(self.frames * 1000 / tts.RATE)


def segment_key(engine_name: str, voice: str, text: str) -> str:
    return hashlib.sha256(f"{RENDER_VERSION}\0{engine_name}\0{voice}\0{text}".encode()).hexdigest()


def _frames(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != tts.RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("not 8 kHz mono 16-bit")
        return w.getnframes()


class PromptCache:
    def __init__(self, root: Path, max_bytes: int, engine: tts.Engine,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.engine = engine
        self._now = clock
        self._memo: dict[str, tuple[Segment, float]] = {}  # key -> (segment, last touch)
        self._size: int | None = None  # bytes on disk as this process last knew it
        self._lock = threading.Lock()
        self.renders = 0  # engine runs by this process (for the benchmark and tests)
        self._mkdir(self.root)

    # --- public ---------------------------------------------------------------------------------------------

    def segment(self, text: str, voice: str) -> Segment:
        """The audio of `text` in `voice`, rendered now if no process has rendered it before."""
        key = segment_key(self.engine.name, voice, text)
        return self._get(key, lambda: self.root / "seg" / key[:2] / f"{key}.wav",
                         lambda tmp: self._render(text, voice, tmp))

    def built(self, key: str, make: Callable[[Path], None]) -> Segment:
        """Audio made by `make(path)` (recorded clips converted or glued), cached under `key` (which must change
        whenever the inputs do: ivr.speech.recorded keys by the source files' size and mtime)."""
        key = hashlib.sha256(f"{RENDER_VERSION}\0{key}".encode()).hexdigest()
        return self._get("rec-" + key, lambda: self.root / "rec" / key[:2] / f"{key}.wav", make)

    def segment_with(self, engine: tts.Engine, text: str, voice: str) -> Segment:
        """`segment` by another engine than the cache's own (a language voiced by another engine)."""
        key = segment_key(engine.name, voice, text)
        return self._get(key, lambda: self.root / "seg" / key[:2] / f"{key}.wav",
                         lambda tmp: self._render_with(engine, text, voice, tmp))

    def pause(self, ms: int) -> Segment:
        """A fixed silence put between joined segments."""
        key = f"pause-{ms}"
        return self._get(key, lambda: self.root / "pause" / f"{ms}.wav",
                         lambda tmp: tts.write_wav(tts.silence(ms), tmp))

    def joined(self, segments: list[Segment]) -> Segment:
        """One WAV holding `segments` in order (the single-file mode), cached by the list's content."""
        key = "msg-" + hashlib.sha256("\n".join(s.path.name for s in segments).encode()).hexdigest()
        return self._get(key, lambda: self.root / "msg" / key[4:6] / f"{key[4:]}.wav",
                         lambda tmp: _concat(segments, tmp))

    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._scan())

    def evict(self) -> int:
        """Delete least recently used files until the cache is at most 90 % of its bound; returns bytes freed."""
        with self._lock:
            files = sorted(self._scan(), key=lambda f: f[2])
            total = sum(size for _, size, _ in files)
            target = int(self.max_bytes * 0.9)
            freed = 0
            gone: set[Path] = set()
            cutoff = self._now() - PROTECT_S
            for path, size, mtime in files:
                if total - freed <= target:
                    break
                if mtime >= cutoff:
                    log.warning("prompt cache above speech.cache_max_mb but every remaining file was used in the "
                                "last %d s; raise speech.cache_max_mb", int(PROTECT_S))
                    break
                with contextlib.suppress(FileNotFoundError):  # another process evicted it first
                    path.unlink()
                freed += size
                gone.add(path)
            if gone:
                self._memo = {k: v for k, v in self._memo.items() if v[0].path not in gone}
            self._size = total - freed
            return freed

    # --- inside ---------------------------------------------------------------------------------------------

    def _get(self, key: str, where: Callable[[], Path], make: Callable[[Path], None]) -> Segment:
        now = self._now()
        hit = self._memo.get(key)
        if hit is not None:
            seg, touched = hit
            if now - touched < TOUCH_EVERY_S:
                return seg
            try:
                os.utime(seg.path)
                self._memo[key] = (seg, now)
                return seg
            except FileNotFoundError:
                del self._memo[key]  # evicted by another process: render again
        path = where()
        try:
            seg = Segment(path, _frames(path))
            os.utime(path)
        except FileNotFoundError:
            seg = self._write(path, make)
        except (ValueError, EOFError, wave.Error):
            log.warning("prompt cache: %s is damaged; rendering it again", path)
            seg = self._write(path, make)
        self._memo[key] = (seg, now)
        return seg

    def _write(self, path: Path, make: Callable[[Path], None]) -> Segment:
        self._mkdir(path.parent)
        tmp = path.parent / f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            make(tmp)
            frames = _frames(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            _unlink_quietly(tmp)
            raise self._error(exc, path.parent) from None
        except BaseException:
            _unlink_quietly(tmp)
            raise
        self._grew(path.stat().st_size)
        return Segment(path, frames)

    def _render(self, text: str, voice: str, out: Path) -> None:
        self._render_with(self.engine, text, voice, out)

    def _render_with(self, engine: tts.Engine, text: str, voice: str, out: Path) -> None:
        tts.render(engine, text, voice, out)
        self.renders += 1

    def _grew(self, nbytes: int) -> None:
        if self._size is None:
            self._size = self.size_bytes()
        else:
            self._size += nbytes
        if self._size > self.max_bytes:
            self.evict()

    def _scan(self) -> list[tuple[Path, int, float]]:
        out = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                if not name.endswith(".wav"):
                    continue
                p = Path(folder) / name
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                out.append((p, st.st_size, st.st_mtime))
        return out

    def _mkdir(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error(exc, folder) from None
        if not os.access(folder, os.W_OK):
            raise CacheError(f"prompt cache folder {folder} is not writable by this user; "
                             "fix its permissions or set speech.cache_dir")

    def _error(self, exc: OSError, folder: Path) -> CacheError:
        if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
            return CacheError(f"prompt cache: no space left on the disk holding {folder}; free space or lower "
                              "speech.cache_max_mb")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return CacheError(f"prompt cache folder {folder} is not writable ({exc.strerror}); fix its "
                              "permissions or set speech.cache_dir")
        return CacheError(f"prompt cache: cannot write in {folder}: {exc.strerror or exc}; check speech.cache_dir")


def _concat(segments: list[Segment], out: Path) -> None:
    frames = []
    for seg in segments:
        with wave.open(str(seg.path), "rb") as r:
            frames.append(r.readframes(r.getnframes()))
    tts.write_wav_bytes(out, b"".join(frames))  # one plain write: a full disk fails cleanly (see write_wav)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
