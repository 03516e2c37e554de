"""TTS engines behind one interface, and the conversion of what they write to telephone audio.

An engine writes a WAV file for a text and a voice (any rate or width); `render` then makes it what FreeSWITCH
plays without resampling: 8 kHz, mono, 16-bit PCM, leading/trailing silence trimmed (so pauses between joined
segments are ours and fixed), loudness normalized (every segment at the same level, no jumps at the joins).
Engines: espeak-ng (default, offline; text goes through stdin, never argv) and `command` (any program that
writes a WAV: RHVoice, piper, a cloud CLI; argv template with {text_file} {voice} {out}, no shell).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

with warnings.catch_warnings():  # pydub warns about ffmpeg at import; WAV in and out never needs it
    warnings.simplefilter("ignore", RuntimeWarning)
    warnings.simplefilter("ignore", DeprecationWarning)  # audioop (Python 3.13 drops it; we are on 3.11)
    from pydub import AudioSegment
    from pydub.silence import detect_leading_silence

from ivr.config import Config
from ivr.errors import IvrError

RATE = 8000
TARGET_DBFS = -18.0  # average loudness of every segment
PEAK_CEILING_DBFS = -1.0
SILENCE_DBFS = -45.0
EDGE_KEEP_MS = 15  # keep a little of the edges so consonants are not clipped
EDGE_FADE_MS = 5
ENGINE_TIMEOUT_S = 60


class TtsError(IvrError):
    """A TTS engine failed or wrote something that is not a WAV."""


class Engine(Protocol):
    name: str  # part of every cache key: a change of engine (or its command) never reuses old audio

    def synth(self, text: str, voice: str, out: Path) -> None: ...


@dataclass
class EspeakEngine:
    binary: str = "espeak-ng"
    name: str = "espeak-ng"

    def synth(self, text: str, voice: str, out: Path) -> None:
        if shutil.which(self.binary) is None:
            raise TtsError(f"{self.binary} is not installed (apt install espeak-ng), or set speech.engine: command")
        argv = [self.binary, "-v", voice, "-b", "1", "-w", str(out), "--stdin"]
        _run(argv, text.encode("utf-8"), f"{self.binary} -v {voice}")


@dataclass
class CommandEngine:
    """Any program that writes a WAV: cfg.speech.command, e.g. `piper --model {voice} --output_file {out}
    --input_file {text_file}`. Each argv word is filled in on its own, so a text can never become an option or a
    shell command."""

    template: str
    name: str = ""

    def __post_init__(self) -> None:
        if "{out}" not in self.template:
            raise IvrError("speech.command must contain {out} (where the program writes its WAV)")
        self.argv = shlex.split(self.template)
        self.name = self.name or "command:" + self.template

    def synth(self, text: str, voice: str, out: Path) -> None:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
            f.write(text + "\n")
            text_file = f.name
        try:
            values = {"{text_file}": text_file, "{voice}": voice, "{out}": str(out)}
            argv = []
            for word in self.argv:
                for k, v in values.items():
                    word = word.replace(k, v)
                argv.append(word)
            stdin = None if "{text_file}" in self.template else text.encode("utf-8")
            _run(argv, stdin, f"speech.command {self.argv[0]}")
        finally:
            os.unlink(text_file)


def _run(argv: list[str], stdin: bytes | None, what: str) -> None:
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=ENGINE_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise TtsError(f"{what}: program not found: {argv[0]}") from None
    except subprocess.TimeoutExpired:
        raise TtsError(f"{what}: no result after {ENGINE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TtsError(f"{what}: exit code {proc.returncode}: {err[-1] if err else 'no message'}")


def make_engine(cfg: Config, name: str | None = None) -> Engine:
    """The TTS engine `name` (default: the one of locale.language; a recorded language's fallback engine)."""
    from ivr.config import tts_engine_for

    name = name or tts_engine_for(cfg, cfg.locale.language)
    if name == "command":
        return CommandEngine(cfg.speech.command)
    if name == "piper":
        from ivr.speech.piper import PiperEngine

        return PiperEngine()
    return EspeakEngine()


def to_phone_audio(seg: AudioSegment, trim: bool = True) -> AudioSegment:
    """8 kHz mono 16-bit, trimmed and loudness normalized."""
    seg = seg.set_channels(1).set_sample_width(2)
    if seg.frame_rate != RATE:
        if seg.frame_rate > RATE:
            seg = anti_alias(seg)  # pydub's resampler (audioop.ratecv) does not filter
        seg = seg.set_frame_rate(RATE)
    if trim and len(seg):
        start = max(detect_leading_silence(seg, SILENCE_DBFS) - EDGE_KEEP_MS, 0)
        end = max(detect_leading_silence(seg.reverse(), SILENCE_DBFS) - EDGE_KEEP_MS, 0)
        if start + end < len(seg):
            seg = seg[start:len(seg) - end]
    if len(seg) > 4 * EDGE_FADE_MS:
        seg = seg.fade_in(EDGE_FADE_MS).fade_out(EDGE_FADE_MS)  # no click where a segment meets a pause
    if seg.rms:
        gain = TARGET_DBFS - seg.dBFS
        peak = seg.max_dBFS
        gain = min(gain, PEAK_CEILING_DBFS - peak)
        seg = seg.apply_gain(gain)
    return seg


def anti_alias(seg: AudioSegment, cutoff_hz: float = 3600.0, taps: int = 63) -> AudioSegment:
    """Low-pass below the 4 kHz Nyquist limit of 8 kHz audio (windowed-sinc FIR), so resampling adds no aliasing.

    pydub's own low_pass_filter is a Python loop (two thirds of a segment's render time); this is numpy."""
    fc = cutoff_hz / seg.frame_rate
    n = np.arange(taps) - (taps - 1) / 2
    kernel = 2 * fc * np.sinc(2 * fc * n) * np.blackman(taps)
    kernel /= kernel.sum()
    samples = np.frombuffer(seg.raw_data, dtype=np.int16).astype(np.float32)
    filtered = np.convolve(samples, kernel, mode="same")
    return seg._spawn(np.clip(filtered, -32768, 32767).astype(np.int16).tobytes())


def render(engine: Engine, text: str, voice: str, out: Path) -> int:
    """Synthesize `text` into `out` as telephone audio; returns its duration in ms."""
    with tempfile.TemporaryDirectory(prefix="ivr-tts-") as tmp:
        raw = Path(tmp) / "raw.wav"
        engine.synth(text, voice, raw)
        try:
            seg = AudioSegment.from_wav(str(raw))
        except Exception as exc:  # pydub raises several types for a bad or missing file
            raise TtsError(f"{engine.name}: did not write a readable WAV for voice {voice!r}: {exc}") from None
    seg = to_phone_audio(seg)
    write_wav(seg, out)
    return duration_ms(seg)


def silence(ms: int) -> AudioSegment:
    return AudioSegment.silent(duration=ms, frame_rate=RATE).set_sample_width(2).set_channels(1)


def duration_ms(seg: AudioSegment) -> int:
    return round(seg.frame_count() * 1000 / seg.frame_rate)


def write_wav(seg: AudioSegment, out: Path) -> None:
    """The WAV is built in memory and written with one plain file write: with the disk full, `wave` writing
    straight to the file (as pydub's export does) fails in close() and leaves a writer whose __del__ prints
    "Exception ignored … No space left on device" tracebacks after the clear error."""
    write_wav_bytes(out, seg.raw_data, seg.frame_rate, seg.sample_width, seg.channels)


def write_wav_bytes(out: Path, frames: bytes, rate: int = RATE, width: int = 2, channels: int = 1) -> None:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(frames)
    with open(out, "wb") as f:
        f.write(buf.getvalue())


