"""The audio processor: a clip (a waveform or a file) -> Whisper's 80-bin log-mel frames, a fixed window or its own
length, with the number of frames that hold real audio.

A clip is a 1-D float32 numpy array at 16 kHz (the sample interface, data/audio_io.py) or a path to an audio file
(decoded, made mono and resampled there). Before any feature is computed, a clip is refused with an `AudioError`
that says why when it is empty, silent (peak below `min_peak`; `allow_silent=True` keeps such clips) or longer than
the tower can take (`max_seconds`; `trim=True` cuts it instead).

`window_seconds` set (Whisper: 30): every clip's waveform is zero-padded to the window, as Whisper was trained, and
`frames` counts the 10 ms frames that cover the clip. `window_seconds=None`: each clip keeps its own length (rounded
up to `frame_multiple` frames); a batch is padded to its longest clip with each clip's own floor value, so a clip's
features never depend on the batch around it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..data.audio_io import AUDIO_RATE, AudioError, load_audio
from ..registry import ConfigError
from .logmel import HOP, log_mel


class AudioProcessor:
    def __init__(
        self,
        window_seconds: float | None = 30.0,
        n_mels: int = 80,
        max_seconds: float | None = 30.0,
        frame_multiple: int = 1,
        min_peak: float = 1e-4,
        allow_silent: bool = False,
        trim: bool = False,
    ):
        if window_seconds is not None and window_seconds <= 0:
            raise ConfigError(f"window_seconds must be > 0 (or None for each clip's own length), got {window_seconds}")
        if window_seconds is not None and max_seconds is not None and max_seconds > window_seconds:
            max_seconds = window_seconds  # a fixed window takes no more than itself
        if window_seconds is not None and max_seconds is None:
            max_seconds = window_seconds
        self.window_seconds, self.n_mels, self.max_seconds = window_seconds, n_mels, max_seconds
        self.frame_multiple, self.min_peak, self.allow_silent, self.trim = frame_multiple, min_peak, allow_silent, trim

    def get_config(self) -> dict:
        return {"window_seconds": self.window_seconds, "max_seconds": self.max_seconds, "trim": self.trim}

    # -- one clip --------------------------------------------------------------------------------------------
    def waveform(self, clip, where: str = "audio") -> np.ndarray:
        """A checked float32 waveform at 16 kHz from an array or a file."""
        if isinstance(clip, (str, Path)):
            where = str(clip)
            clip = load_audio(clip)
        audio = np.asarray(clip, dtype=np.float32)
        if audio.ndim != 1:
            raise AudioError(f"{where}: expected a mono waveform [samples] at {AUDIO_RATE} Hz, got shape {audio.shape}")
        if audio.size == 0:
            raise AudioError(f"{where}: the clip is empty (0 samples)")
        if not np.isfinite(audio).all():
            raise AudioError(f"{where}: the clip holds NaN or infinite samples")
        peak = float(np.abs(audio).max())
        if peak < self.min_peak and not self.allow_silent:
            raise AudioError(
                f"{where}: the clip is silent (peak amplitude {peak:.1e} < {self.min_peak:g}); pass allow_silent=True "
                "to keep silent clips"
            )
        seconds = audio.size / AUDIO_RATE
        if self.max_seconds is not None and seconds > self.max_seconds:
            if not self.trim:
                raise AudioError(
                    f"{where}: the clip lasts {seconds:.2f} s, longer than this tower's {self.max_seconds:g} s; "
                    "cut it into shorter clips, or pass trim=True to keep only its start"
                )
            audio = audio[: int(self.max_seconds * AUDIO_RATE)]
        return audio

    def num_frames(self, n_samples: int) -> int:
        """10 ms frames that cover n samples (rounded up to frame_multiple)."""
        frames = math.ceil(n_samples / HOP)
        return math.ceil(frames / self.frame_multiple) * self.frame_multiple

    def _mel(self, audio: np.ndarray) -> torch.Tensor:
        if self.window_seconds is not None:
            target = int(round(self.window_seconds * AUDIO_RATE))
        else:
            target = self.num_frames(audio.size) * HOP
        padded = np.zeros(target, np.float32)
        padded[: min(target, audio.size)] = audio[:target]
        return log_mel(torch.from_numpy(padded), self.n_mels)[0]  # [n_mels, T]

    # -- a batch ---------------------------------------------------------------------------------------------
    def __call__(self, clips: list) -> dict[str, torch.Tensor]:
        """{"input_features": [B, n_mels, T], "frames": [B] frames holding the clip, "samples": [B]}."""
        if not len(clips):
            raise AudioError("no audio clips given")
        waves = [self.waveform(c, f"audio clip {i}") for i, c in enumerate(clips)]
        mels = [self._mel(w) for w in waves]
        width = max(m.shape[1] for m in mels)
        feats = torch.empty(len(mels), self.n_mels, width)
        for i, m in enumerate(mels):
            feats[i, :, : m.shape[1]] = m
            feats[i, :, m.shape[1] :] = m.min()  # the clip's own floor: padding never depends on the batch
        frames = torch.tensor([min(self.num_frames(w.size), width) for w in waves], dtype=torch.long)
        samples = torch.tensor([w.size for w in waves], dtype=torch.long)
        return {"input_features": feats, "frames": frames, "samples": samples}
