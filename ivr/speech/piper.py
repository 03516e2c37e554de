"""The `piper` engine: piper-tts (neural TTS, run in this process) with a voice model file per language.

Optional: `pip install -e '.[piper]'` (or `scripts/setup.sh --piper`). piper-tts itself is GPL-3.0-or-later; the
voices have licences of their own (README, "Voices"). `speech.piper_models.<lang>` is the path of the voice's
`.onnx` file, its `.onnx.json` beside it. A model is loaded once per process and reused; piper writes at the
voice's own rate (22050 Hz for "medium" voices), which tts.render resamples to 8 kHz with a low-pass first.
"""

from __future__ import annotations

import threading
import wave
from pathlib import Path

from ivr.speech.tts import TtsError

INSTALL_HINT = "pip install -e '.[piper]' (or scripts/setup.sh --piper)"


def available() -> bool:
    try:
        import piper  # noqa: F401
    except ImportError:
        return False
    return True


class PiperEngine:
    """`voice` is the model path (speech.piper_models[lang])."""

    def __init__(self) -> None:
        try:
            from importlib.metadata import version

            self.name = f"piper:{version('piper-tts')}"
        except Exception:  # not installed: synth says how to install it
            self.name = "piper"
        self._voices: dict[str, object] = {}
        self._lock = threading.Lock()

    def _voice(self, model: str):  # noqa: ANN202
        with self._lock:
            voice = self._voices.get(model)
            if voice is None:
                try:
                    from piper import PiperVoice
                except ImportError:
                    raise TtsError(f"speech.engine piper: piper-tts is not installed; {INSTALL_HINT}") from None
                path = Path(model)
                if not path.is_file():
                    raise TtsError(f"speech.piper_models: voice model {model} not found")
                if not Path(f"{model}.json").is_file():
                    raise TtsError(f"speech.piper_models: {model}.json (the voice's config) is missing beside it")
                try:
                    voice = PiperVoice.load(path)
                except Exception as exc:  # onnxruntime and json errors: say which model
                    raise TtsError(f"speech.piper_models: cannot load {model}: {exc}") from None
                self._voices[model] = voice
            return voice

    def synth(self, text: str, voice: str, out: Path) -> None:
        model = self._voice(voice)
        try:
            with wave.open(str(out), "wb") as w:
                model.synthesize_wav(text, w)
        except Exception as exc:
            raise TtsError(f"piper ({Path(voice).name}): {exc}") from None
