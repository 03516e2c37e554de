"""TTS rendering to telephone audio and the prompt cache (keys, hits, two processes, eviction, errors)."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import sys
import wave
from pathlib import Path

import pytest
from speech_fakes import FakeEngine, write_tone

from ivr.errors import IvrError
from ivr.speech import cache as cache_mod
from ivr.speech import tts
from ivr.speech.cache import CacheError, PromptCache, segment_key


def _params(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()


def test_render_gives_8k_mono_16bit_trimmed_and_normalized(tmp_path):
    quiet, loud = tmp_path / "q.wav", tmp_path / "l.wav"
    ms_q = tts.render(FakeEngine(amplitude=0.05), "abcdefghij", "v", quiet)
    ms_l = tts.render(FakeEngine(amplitude=0.6), "abcdefghij", "v", loud)
    for path, ms in ((quiet, ms_q), (loud, ms_l)):
        rate, channels, width, frames = _params(path)
        assert (rate, channels, width) == (8000, 1, 2)
        assert ms == round(frames / 8)
        # the tone is 150 ms with 100 ms silence each side: edges trimmed to about EDGE_KEEP_MS
        assert 150 <= ms <= 150 + 2 * (tts.EDGE_KEEP_MS + 10) + 5  # detection works in 10 ms steps
    # both at the same loudness whatever the engine's level
    level = tts.AudioSegment.from_wav
    assert level(quiet).dBFS == pytest.approx(level(loud).dBFS, abs=0.5)
    assert level(loud).dBFS == pytest.approx(tts.TARGET_DBFS, abs=0.5)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_engine_takes_text_on_stdin(tmp_path):
    out = tmp_path / "e.wav"
    ms = tts.render(tts.EspeakEngine(), "--help; сто гривень", "uk", out)  # never parsed as an option
    assert _params(out)[:3] == (8000, 1, 2)
    assert ms > 500


def test_command_engine_fills_argv_without_a_shell(tmp_path):
    script = tmp_path / "fake_tts.py"
    seen = tmp_path / "seen.txt"
    here = str(Path(__file__).parent)
    script.write_text(
        "import sys, pathlib\n"
        f"sys.path.insert(0, {here!r})\n"
        "from speech_fakes import write_tone\n"
        "text_file, voice, out = sys.argv[1:4]\n"
        f"pathlib.Path({str(seen)!r}).write_text(pathlib.Path(text_file).read_text(encoding='utf-8') + voice, "
        "encoding='utf-8')\n"
        "write_tone(pathlib.Path(out), 0.3, rate=16000)\n")
    engine = tts.CommandEngine(f"{sys.executable} {script} {{text_file}} {{voice}} {{out}}")
    out = tmp_path / "c.wav"
    ms = tts.render(engine, "$(touch pwned); `id` 'x'", "my voice?", out)
    assert seen.read_text(encoding="utf-8") == "$(touch pwned); `id` 'x'\nmy voice?"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert _params(out)[:3] == (8000, 1, 2) and 300 <= ms <= 340


def test_command_engine_errors_are_clear(tmp_path):
    with pytest.raises(IvrError, match=r"must contain \{out\}"):
        tts.CommandEngine("piper --model x")
    with pytest.raises(tts.TtsError, match="program not found: /nonexistent/tts"):
        tts.render(tts.CommandEngine("/nonexistent/tts {out}"), "a", "v", tmp_path / "x.wav")
    bad = tts.CommandEngine(f"{sys.executable} -c pass {{out}}")  # writes nothing
    with pytest.raises(tts.TtsError, match="did not write a readable WAV"):
        tts.render(bad, "a", "v", tmp_path / "x.wav")


def test_hit_does_not_run_the_engine_again_even_in_a_new_process(tmp_path):
    engine = FakeEngine()
    c = PromptCache(tmp_path, 10**8, engine)
    a = c.segment("сто гривень", "uk")
    assert c.segment("сто гривень", "uk") == a
    assert len(engine.calls) == 1
    c.segment("сто гривень", "ru")  # the voice is part of the key
    assert len(engine.calls) == 2
    fresh = PromptCache(tmp_path, 10**8, engine)  # what another process sees
    b = fresh.segment("сто гривень", "uk")
    assert len(engine.calls) == 2 and fresh.renders == 0
    assert b.path == a.path and b.frames == a.frames == _params(a.path)[3]
    assert a.duration_ms == round(a.frames / 8)


def test_engine_name_is_part_of_the_key():
    assert segment_key("espeak-ng", "uk", "a") != segment_key("command:piper", "uk", "a")
    assert segment_key("e", "uk", "a") != segment_key("e", "uk", "a ")


def test_damaged_file_is_rendered_again(tmp_path):
    engine = FakeEngine()
    c = PromptCache(tmp_path, 10**8, engine)
    seg = c.segment("x", "v")
    seg.path.write_bytes(b"RIFF broken")
    again = PromptCache(tmp_path, 10**8, engine).segment("x", "v")
    assert len(engine.calls) == 2 and _params(again.path)[0] == 8000


def _worker(root: str, texts: list[str], barrier, rounds: int) -> None:
    barrier.wait(timeout=30)
    for _ in range(rounds):
        c = PromptCache(Path(root), 10**9, FakeEngine())  # a fresh cache each round: no memo, real races
        for t in texts:
            c.segment(t, "v")


def test_two_processes_writing_the_same_keys_stay_consistent(tmp_path):
    texts = [f"text number {i}" for i in range(15)]
    ctx = multiprocessing.get_context("spawn")  # fork would copy the gevent hub and open sockets
    barrier = ctx.Barrier(2)
    pre = PromptCache(tmp_path, 10**9, FakeEngine())
    for t in texts[::2]:  # some keys exist already, others are raced for
        pre.segment(t, "v")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), texts, barrier, 3)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    files = sorted(tmp_path.rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    wavs = [f for f in files if f.suffix == ".wav"]
    assert len(wavs) == len(texts)
    expected = tmp_path / "expected"
    expected.mkdir()
    reference = PromptCache(expected, 10**9, FakeEngine())
    for t in texts:
        mine = reference.segment(t, "v")
        theirs = tmp_path / "seg" / mine.path.parent.name / mine.path.name
        assert theirs.read_bytes() == mine.path.read_bytes()


def test_eviction_by_size_removes_least_recently_used(tmp_path, monkeypatch):
    now = [1_000_000.0]
    engine = FakeEngine()
    c = PromptCache(tmp_path, 60_000, engine, clock=lambda: now[0])
    old = [c.segment(f"old {i} " + "x" * 40, "v") for i in range(6)]
    size_one = old[0].path.stat().st_size
    for i, seg in enumerate(old):  # used long ago, oldest first
        os.utime(seg.path, (now[0] - 10_000 + i, now[0] - 10_000 + i))
    assert c.size_bytes() < 60_000
    new = [c.segment(f"new {i} " + "x" * 40, "v") for i in range(6)]
    assert c.size_bytes() <= 60_000
    assert not old[0].path.exists()  # the least recently used went first
    assert all(s.path.exists() for s in new)  # just used: protected
    gone = [s for s in old if not s.path.exists()]
    assert gone == old[:len(gone)] and size_one * len(gone) >= 12 * size_one - 60_000
    calls = len(engine.calls)
    c.segment("old 0 " + "x" * 40, "v")  # evicted: rendered again, not handed out as a missing file
    assert len(engine.calls) == calls + 1


def test_recently_used_files_are_never_evicted(tmp_path):
    c = PromptCache(tmp_path, 10_000, FakeEngine())
    segs = [c.segment(f"t{i}" + "y" * 40, "v") for i in range(4)]
    assert c.size_bytes() > 10_000
    assert all(s.path.exists() for s in segs)


def test_unwritable_cache_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match="speech.cache_dir"):
        PromptCache(blocker / "cache", 10**6, FakeEngine())


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_cache_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CacheError, match="not writable"):
            PromptCache(ro, 10**6, FakeEngine())
    finally:
        ro.chmod(0o700)


def test_disk_full_is_a_clear_error_and_leaves_no_temp_file(tmp_path):
    c = PromptCache(tmp_path, 10**6, FakeEngine(fail_errno=errno.ENOSPC))
    with pytest.raises(CacheError, match="no space left.*speech.cache_max_mb"):
        c.segment("x", "v")
    assert not list(tmp_path.rglob("*.tmp"))


def test_joined_file_concatenates_segments(tmp_path):
    c = PromptCache(tmp_path, 10**8, FakeEngine())
    parts = [c.segment("a", "v"), c.pause(200), c.segment("bbbb", "v")]
    one = c.joined(parts)
    assert one.frames == sum(p.frames for p in parts) == _params(one.path)[3]
    assert c.pause(200).frames == 1600
    assert c.joined(parts) == one


def test_render_version_changes_the_key(monkeypatch):
    a = segment_key("e", "v", "t")
    monkeypatch.setattr(cache_mod, "RENDER_VERSION", "999")
    assert segment_key("e", "v", "t") != a


def test_tone_helper_lengths(tmp_path):
    p = tmp_path / "t.wav"
    write_tone(p, 0.5, rate=8000)
    assert _params(p) == (8000, 1, 2, 4000 + 1600)


def test_anti_alias_keeps_speech_band_and_removes_what_would_fold_back(tmp_path):
    for freq, kept in ((1000, True), (6000, False)):
        p = tmp_path / f"{freq}.wav"
        write_tone(p, 0.5, rate=22050, freq=freq, pad_s=0)
        seg = tts.AudioSegment.from_wav(str(p))
        drop = seg.dBFS - tts.anti_alias(seg).dBFS
        assert (drop < 0.5) if kept else (drop > 40), (freq, drop)
