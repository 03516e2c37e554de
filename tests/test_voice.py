"""The recorded engine: a number kit spoken by espeak-ng (a stand-in speaker), glued by the shared grammar; fixed
prompts from recordings; TTS where a clip is missing; `ivr voice kit | check`."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml
from speech_fakes import FakeEngine, write_tone
from test_money import CASES, FORMS, WHOLE

from ivr.cli import main
from ivr.speech import Speech, tts
from ivr.speech.kit import number_kit, prompt_clips
from ivr.speech.money import CURRENCIES
from ivr.speech.numbers import LANGS
from ivr.speech.recorded import check, glue, inspect

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
VOICES = {"uk": "uk", "ru": "ru", "bg": "bg", "en": "en-us"}
# Building the kit speaks a few hundred clips with espeak-ng (about 20 s on an idle machine, minutes on a loaded
# one); the suite's 120-s hang guard would count that against the first test.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
STAND_IN_RATE = 22050  # what espeak-ng writes: the kit is converted to 8 kHz like any recording


def speak(text: str, lang: str, out: Path) -> None:
    """espeak-ng as the speaker: the words, with a moment of quiet before and after as in a real recording."""
    raw = subprocess.run(["espeak-ng", "-v", VOICES[lang], "--stdout", "--stdin"], input=text.encode(),
                         capture_output=True, check=True, timeout=60).stdout
    samples = np.frombuffer(raw[44:], dtype=np.int16)  # espeak's streamed WAV header is 44 bytes
    pad = np.zeros(int(0.15 * STAND_IN_RATE), dtype=np.int16)
    tts.write_wav_bytes(out, np.concatenate([pad, samples, pad]).tobytes(), STAND_IN_RATE)


@pytest.fixture(scope="module")
def kit_dir(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (it is the stand-in speaker)")
    root = tmp_path_factory.mktemp("voice")
    jobs = []
    for lang in LANGS:
        (root / lang / "kit").mkdir(parents=True)
        (root / lang / "audio").mkdir()
        shutil.copy(REPO_PROMPTS / lang / "messages.yaml", root / lang / "messages.yaml")
        jobs += [(c.text, lang, c.path(root / lang)) for c in number_kit(lang, CURRENCIES)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda job: speak(*job), jobs))
    return root


def recorded_cfg(cfg, prompts: Path):
    speech = dataclasses.replace(cfg.speech, prompts_dir=str(prompts), engines={lang: "recorded" for lang in LANGS})
    return cfg.replace(speech=speech)


@pytest.fixture
def engine():
    return FakeEngine()


@pytest.fixture
def speech(cfg, kit_dir, engine):
    return Speech(recorded_cfg(cfg, kit_dir), engine=engine)


def _frames(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return w.readframes(w.getnframes())


def _money_table(lang: str) -> list[tuple[str, Decimal, str]]:
    rows = [(cur, Decimal(n), said) for (lng, cur), texts in WHOLE.items() if lng == lang
            for n, said in zip(FORMS, texts, strict=True)]
    return rows + [(cur, Decimal(amount), said) for lng, cur, amount, said in CASES if lng == lang]


@pytest.mark.parametrize("lang", LANGS)
def test_every_form_in_the_money_tables_is_glued_from_the_right_clips(speech, kit_dir, engine, lang):
    # the clip for each word is found from the kit script (what the speaker was asked to say), not from the grammar
    by_word: dict[str, list[Path]] = {}
    for clip in number_kit(lang, CURRENCIES):
        by_word.setdefault(clip.text, []).append(clip.path(kit_dir / lang))
    assert all(len(paths) == 1 for paths in by_word.values()), "two clips say one word: the script is ambiguous"
    rec = speech.recorded[lang]
    rows = _money_table(lang)
    assert len(rows) >= 10
    for currency, amount, said in rows:
        pieces, _ = speech.value_pieces("amount", amount, lang, currency)
        assert " ".join(p.text for p in pieces) == said
        for piece in pieces:
            expected = [by_word[word][0] for word in re.split(r"[ -]", piece.text)]
            assert rec.clips_for(piece.words) == expected, (said, piece.text)
            seg = speech.render_piece(lang, piece)
            assert _frames(seg.path) == glue(expected, list(piece.words)).raw_data
    assert engine.calls == []  # not one word of an amount went to the TTS engine
    assert speech.fallbacks == 0


def test_a_whole_message_uses_recordings_and_tts_only_for_the_name(cfg, kit_dir, engine, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(kit_dir, prompts)
    speech = Speech(recorded_cfg(cfg, prompts), engine=engine)
    clips = prompt_clips(speech._templates["uk"], cfg.company.name)
    for clip in clips:  # the speaker recorded every fixed part and the company name
        speak(clip.text, "uk", clip.path(prompts / "uk"))
    values = {"name": "Петренко Іван", "account": "1205", "amount": Decimal("1021.05"), "currency": "UAH",
              "due_date": "2026-08-23", "overdue_months": 3}
    for key in ("greeting", "debt", "menu", "goodbye"):
        rendered = speech.prompt("uk", key, **values)
        assert rendered.duration_ms > 0
        assert all(str(p).startswith(str(speech.cache.root)) for p in rendered.files)
    said_by_tts = {text for text, _ in engine.calls}
    assert said_by_tts == {"Петренко", "Іван"}  # names have no clips, by design
    goodbye = speech.prompt("uk", "goodbye")
    assert _frames(goodbye.files[0]) == tts.to_phone_audio(
        tts.AudioSegment.from_wav(str(prompts / "uk" / "audio" / "goodbye.wav"))).raw_data


def test_a_missing_clip_falls_back_to_tts_for_that_segment_and_check_says_so(cfg, kit_dir, engine, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(kit_dir, prompts)
    (prompts / "uk" / "kit" / "uah.few.wav").unlink()
    speech = Speech(recorded_cfg(cfg, prompts), engine=engine)
    pieces, _ = speech.value_pieces("amount", Decimal("1022.02"), "uk", "UAH")
    assert [p.text for p in pieces] == ["одна тисяча", "двадцять дві гривні", "дві копійки"]
    for piece in pieces:
        speech.render_piece("uk", piece)
    assert engine.calls == [("двадцять дві гривні", "uk")]  # only the segment holding the missing word
    assert speech.fallbacks == 1
    findings = check(prompts / "uk", number_kit("uk", ("UAH",)))
    missing = [f for f in findings if f.missing]
    assert [f.clip.key for f in missing] == ["uah.few"]
    assert "TTS" in missing[0].problem
    assert not [f for f in findings if f.problem and not f.missing], "the stand-in speaker's clips are all fine"


def test_check_finds_quiet_clipped_wrong_rate_and_bad_edges(tmp_path):
    def tone(name: str, **kw) -> Path:
        path = tmp_path / f"{name}.wav"
        write_tone(path, 0.5, **kw)
        return path

    assert inspect(tone("fine")) == []
    assert any(p.startswith("too quiet") for p in inspect(tone("quiet", amplitude=0.008)))
    assert any(p.startswith("clipped") for p in inspect(tone("loud", amplitude=1.0)))
    assert any(p.startswith("wrong rate") for p in inspect(tone("rate", rate=6000)))
    assert any(p.startswith("silence at the start") for p in inspect(tone("long", pad_s=1.5)))
    assert any(p.startswith("no silence at the start") for p in inspect(tone("cut", pad_s=0)))
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    assert inspect(tmp_path / "junk.wav")[0].startswith("not a readable WAV")


def test_an_unreadable_recording_is_said_by_tts(cfg, kit_dir, engine, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(kit_dir, prompts)
    (prompts / "uk" / "kit" / "5.wav").write_bytes(b"RIFF broken")
    speech = Speech(recorded_cfg(cfg, prompts), engine=engine)
    pieces, _ = speech.value_pieces("amount", Decimal("5"), "uk", "UAH")
    speech.render_piece("uk", pieces[0])
    assert engine.calls == [("п'ять гривень", "uk")]


def test_voice_kit_and_check_commands(kit_dir, tmp_path, capsys):
    prompts = tmp_path / "prompts"
    shutil.copytree(kit_dir, prompts)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"speech": {"prompts_dir": "prompts", "cache_dir": "cache",
                                                 "engines": {"uk": "recorded"}},
                                      "company": {"names": {"uk": "Водоканал"}}}), encoding="utf-8")
    assert main(["--config", str(config), "voice", "kit", "--lang", "uk"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    assert "kit/2f.wav | дві | дві гривні" in lines
    assert "kit/thousand.few.wav | тисячі | дві тисячі гривень" in lines
    assert "audio/company.wav | Водоканал | the company name, as in the greeting" in lines
    assert "audio/goodbye.wav | Дякуємо за увагу. До побачення! | Дякуємо за увагу. До побачення!" in lines
    kit_count = len(number_kit("uk", ("UAH",)))
    assert sum(ln.startswith("kit/") for ln in lines) == kit_count
    # every word clip recorded, no fixed prompt yet: check lists the prompts as missing and exits 1
    assert main(["--config", str(config), "voice", "check", "--lang", "uk"]) == 1
    out = capsys.readouterr().out
    assert "audio/goodbye.wav (Дякуємо за увагу. До побачення!): missing: said by the TTS engine instead" in out
    assert f"{kit_count} fine" in out and "0 bad" in out
    assert "kit/" not in out.split("\nuk: ")[0]


def test_a_recording_made_for_an_older_text_is_not_played(cfg, kit_dir, engine, tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(kit_dir, prompts)
    speak("Дякуємо за увагу. До побачення!", "uk", prompts / "uk" / "audio" / "goodbye.wav")
    clips = prompt_clips(Speech(recorded_cfg(cfg, prompts), engine=engine)._templates["uk"], cfg.company.name)
    findings = {f.clip.key: f for f in check(prompts / "uk", clips)}  # remembers which text goodbye.wav says
    assert findings["goodbye"].problem == ""
    assert (prompts / "uk" / "audio" / "texts.yaml").exists()
    # staff change the text (ivr prompts / the console) but nobody records it again
    messages = prompts / "uk" / "messages.yaml"
    messages.write_text(messages.read_text(encoding="utf-8").replace(
        'goodbye: "Дякуємо за увагу. До побачення!"', 'goodbye: "Гарного вечора!"'), encoding="utf-8")
    speech = Speech(recorded_cfg(cfg, prompts), engine=engine)
    speech.prompt("uk", "goodbye")
    assert engine.calls == [("Гарного вечора!", "uk")]  # the old recording is not played for the new text
    clips = prompt_clips(speech._templates["uk"], cfg.company.name)
    stale = {f.clip.key: f for f in check(prompts / "uk", clips)}["goodbye"]
    assert stale.problem.startswith('stale: recorded for "Дякуємо за увагу. До побачення!"')
    speak("Гарного вечора!", "uk", prompts / "uk" / "audio" / "goodbye.wav")  # recorded again
    assert {f.clip.key: f for f in check(prompts / "uk", clips)}["goodbye"].problem == ""
    Speech(recorded_cfg(cfg, prompts), engine=engine).prompt("uk", "goodbye")
    assert len(engine.calls) == 1  # now the recording plays
