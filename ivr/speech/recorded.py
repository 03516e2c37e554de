"""The `recorded` engine: a person's recordings played instead of TTS, and the check of those recordings.

Fixed prompts come from `prompts/<lang>/audio/<clip>.wav`; amounts, dates, months, account digits and phone
numbers are glued from the number kit `prompts/<lang>/kit/<key>.wav` (ivr.speech.kit) in the word order the shared
grammar yields. Every recording may be at any rate, mono or stereo, 16/24/32-bit: it is converted exactly like TTS
output (tts.to_phone_audio: 8 kHz mono, edge silence trimmed, loudness normalized to the same level), so recorded
and synthesized segments sit at one loudness. A segment whose recording or any of whose word clips is missing
returns None here and the caller says that segment with the TTS engine instead (see `check`, which lists them).
Converted audio is cached in the prompt cache under a key made of the source files' size and modification time,
so a re-recorded clip is picked up without clearing anything.

A fixed-prompt recording is tied to the text it was made for: `ivr voice check` writes `audio/texts.yaml` (per
clip: the text and a digest of the file) for every recording it has not seen; once the text in messages.yaml (or
the company name) changes while the file does not, the recording is stale: it is no longer played (TTS says the
new text) and check lists it until it is recorded again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from ivr.speech import tts
from ivr.speech.cache import PromptCache, Segment
from ivr.speech.kit import Clip
from ivr.speech.words import Word

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

log = logging.getLogger(__name__)

WORD_GAP_MS = 40  # between two glued words (each clip keeps tts.EDGE_KEEP_MS of its own edges)
MIN_RATE = 8000
QUIET_DBFS = -35.0  # average loudness of the spoken part below this: normalizing would lift the noise with it
CLIP_LEVEL = 32767 * 0.99
CLIPPED_SHARE = 0.0005  # samples at full scale beyond this share: the recording level was too high
EDGE_LONG_MS = 1000
EDGE_NONE_MS = 10
MANIFEST = "texts.yaml"  # in audio/: which text each fixed recording was made for


def _fingerprint(path: Path) -> str | None:
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


def load(path: Path) -> AudioSegment:
    """A recording as pydub audio; any problem reading it is a ValueError saying what."""
    try:
        with warnings.catch_warnings():  # pydub looks for ffprobe when the header is not a WAV's
            warnings.simplefilter("ignore", RuntimeWarning)
            return AudioSegment.from_wav(str(path))
    except Exception as exc:  # pydub raises several types for a bad file
        raise ValueError(f"not a readable WAV ({exc})") from None


def phone_audio(path: Path) -> AudioSegment:
    """A recording as telephone audio: the same conversion TTS output gets."""
    return tts.to_phone_audio(load(path))


class RecordedVoice:
    """One language's recordings (`lang_dir` = prompts/<lang>) rendered through the prompt cache."""

    def __init__(self, lang_dir: Path, cache: PromptCache) -> None:
        self.lang_dir = lang_dir
        self.cache = cache

    def prompt_path(self, clip: str) -> Path:
        return self.lang_dir / "audio" / f"{clip}.wav"

    def word_path(self, key: str) -> Path:
        return self.lang_dir / "kit" / f"{key}.wav"

    def prompt(self, clip: str, text: str | None = None) -> Segment | None:
        """The recorded fixed part `clip`, or None when it is not recorded or was recorded for another `text`."""
        path = self.prompt_path(clip)
        fp = _fingerprint(path)
        if fp is None:
            return None
        if text is not None and stale_text(self.lang_dir, clip, path, text) is not None:
            return None
        return self._built(f"prompt\0{path}\0{fp}", lambda tmp: tts.write_wav(phone_audio(path), tmp))

    def clips_for(self, words: tuple[Word, ...] | list[Word]) -> list[Path] | None:
        """The kit files that say `words` in order, or None when any is missing."""
        paths = [self.word_path(w.key) for w in words]
        return paths if paths and all(p.is_file() for p in paths) else None

    def words(self, words: tuple[Word, ...] | list[Word]) -> Segment | None:
        """`words` glued from the kit, or None when a clip is missing (the caller falls back to TTS)."""
        paths = self.clips_for(words)
        if paths is None:
            return None
        fps = [_fingerprint(p) for p in paths]
        if None in fps:
            return None  # deleted between the two looks
        seps = "".join("-" if w.sep == "-" else " " for w in words)
        key = "words\0" + hashlib.sha256("\0".join([str(self.lang_dir), seps, *map(str, fps)]).encode()).hexdigest()
        return self._built(key, lambda tmp: tts.write_wav(glue(paths, list(words)), tmp))

    def _built(self, key: str, make) -> Segment | None:  # noqa: ANN001
        try:
            return self.cache.built(key, make)
        except ValueError as exc:  # an unreadable recording: say the segment by TTS (ivr voice check names it)
            log.warning("event=recording_unreadable dir=%s error=%s", self.lang_dir, exc)
            return None


def glue(paths: list[Path], words: list[Word]) -> AudioSegment:
    """Clips in order with WORD_GAP_MS between words (none inside an English hyphenated compound)."""
    out = tts.silence(0)
    for i, (path, word) in enumerate(zip(paths, words, strict=True)):
        if i and word.sep != "-":
            out += tts.silence(WORD_GAP_MS)
        out += phone_audio(path)
    return out


# --- which text a recording was made for ---------------------------------------------------------------------------

_digests: dict[str, tuple[str, str]] = {}  # path -> (fingerprint, digest): hash a file once per change
_manifests: dict[str, tuple[str | None, dict]] = {}  # path -> (fingerprint, parsed manifest)


def digest(path: Path) -> str:
    fp = _fingerprint(path) or ""
    known = _digests.get(str(path))
    if known is None or known[0] != fp:
        known = (fp, hashlib.sha256(path.read_bytes()).hexdigest()[:16])
        _digests[str(path)] = known
    return known[1]


def manifest_path(lang_dir: Path) -> Path:
    return lang_dir / "audio" / MANIFEST


def load_manifest(lang_dir: Path) -> dict[str, dict[str, str]]:
    """clip -> {text, digest}; an unreadable manifest counts as empty (check rewrites it). Parsed once per change
    of the file (it is asked for every fixed segment of every call)."""
    path = manifest_path(lang_dir)
    fp = _fingerprint(path)
    known = _manifests.get(str(path))
    if known is not None and known[0] == fp:
        return dict(known[1])
    data: object = None
    if fp is not None:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, yaml.YAMLError, UnicodeDecodeError):
            data = None
    out = {str(k): v for k, v in data.items() if isinstance(v, dict) and {"text", "digest"} <= set(v)} \
        if isinstance(data, dict) else {}
    _manifests[str(path)] = (fp, out)
    return dict(out)


def stale_text(lang_dir: Path, clip: str, path: Path, text: str) -> str | None:
    """The text `clip` was recorded for when that is not `text` any more (same file, changed text), else None."""
    entry = load_manifest(lang_dir).get(clip)
    if entry is None or entry["text"] == text or entry["digest"] != digest(path):
        return None
    return str(entry["text"])


def _save_manifest(lang_dir: Path, data: dict[str, dict[str, str]]) -> None:
    path = manifest_path(lang_dir)
    tmp = path.with_name(f".{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text("# Which text each recording here was made for (written by `ivr voice check`).\n"
                   + yaml.safe_dump(data, allow_unicode=True, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


# --- check -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    clip: Clip
    path: Path
    problem: str  # '' when the clip is fine
    missing: bool = False


def inspect(path: Path) -> list[str]:
    """What is wrong with one recording (empty when nothing): unreadable, rate, too quiet, clipped, edges."""
    try:
        seg = load(path)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if seg.frame_rate < MIN_RATE:
        problems.append(f"wrong rate: {seg.frame_rate} Hz (record at {MIN_RATE} Hz or more; 16000-48000 is best)")
    if seg.sample_width < 2:
        problems.append("8-bit audio: record 16-bit or more")
    mono = seg.set_channels(1).set_sample_width(2)
    samples = np.frombuffer(mono.raw_data, dtype=np.int16)
    if not len(samples) or mono.max_dBFS < tts.SILENCE_DBFS:
        return problems + ["silent: nothing above the noise floor"]
    lead = detect_leading_silence(mono, tts.SILENCE_DBFS)
    trail = detect_leading_silence(mono.reverse(), tts.SILENCE_DBFS)
    spoken = mono[lead:len(mono) - trail] if lead + trail < len(mono) else mono
    if spoken.dBFS < QUIET_DBFS:
        problems.append(f"too quiet: {spoken.dBFS:.0f} dBFS spoken level (want at least {QUIET_DBFS:.0f}; record "
                        "closer to the microphone or raise the input gain)")
    full = int(np.count_nonzero(np.abs(samples.astype(np.int32)) >= CLIP_LEVEL))
    if full > max(3, CLIPPED_SHARE * len(samples)):
        problems.append(f"clipped: {full} samples at full scale (lower the input gain and record again)")
    for where, ms in (("start", lead), ("end", trail)):
        if ms > EDGE_LONG_MS:
            problems.append(f"silence at the {where}: {ms / 1000:.1f} s (cut it to under {EDGE_LONG_MS / 1000:.0f} s)")
        elif ms < EDGE_NONE_MS:
            problems.append(f"no silence at the {where}: the word may be cut off (leave a moment of quiet)")
    return problems


def check(lang_dir: Path, clips: list[Clip]) -> list[Finding]:
    """One finding per clip: missing, bad (with every problem), or fine (problem ''). A fixed recording not seen
    before (or re-recorded) is remembered in audio/texts.yaml with the text it is for; one whose text changed
    since is stale."""
    out = []
    manifest = load_manifest(lang_dir)
    remembered = dict(manifest)
    for clip in clips:
        path = clip.path(lang_dir)
        if not path.is_file():
            out.append(Finding(clip, path, "missing: said by the TTS engine instead", missing=True))
            continue
        problems = inspect(path)
        if clip.folder == "audio":
            entry = manifest.get(clip.key)
            if entry is None or entry["digest"] != digest(path):
                remembered[clip.key] = {"text": clip.text, "digest": digest(path)}
            elif entry["text"] != clip.text:
                problems.append(f"stale: recorded for \"{entry['text']}\", the text is now \"{clip.text}\"; record it "
                                "again (until then the TTS engine says it)")
        out.append(Finding(clip, path, "; ".join(problems)))
    if remembered != manifest:
        _save_manifest(lang_dir, remembered)
    return out
