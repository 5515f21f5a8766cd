"""Whisper's log-mel spectrogram in torch: batched, differentiable, equal to transformers' WhisperFeatureExtractor.

Recipe (openai/whisper audio.py == WhisperFeatureExtractor): 16 kHz mono float32, STFT with n_fft 400, hop 160
(10 ms per frame), periodic Hann window, centred with reflect padding; power |X|^2 through an 80-bin Slaney mel
filterbank (0-8 kHz, Slaney area norm); log10 (clamped at 1e-10); x = max(x, max(x) - 8) per utterance; (x + 4) / 4.
The last STFT frame is dropped, so n samples give n // 160 frames (a 30 s window: 3000). Checked against
transformers' extractor to 0.0 and against faster-whisper's to 1e-7 (tests/test_audio_processor.py).
"""

from __future__ import annotations

import numpy as np
import torch

SAMPLE_RATE, N_FFT, HOP = 16000, 400, 160
_FILTERS: dict[tuple[int, int], torch.Tensor] = {}


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_hz / f_sp + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(n_mels: int = 80, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] Slaney-scale, Slaney-normalised triangular filters from 0 Hz to Nyquist (librosa's)."""
    fft_f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def log_mel(audio: torch.Tensor, n_mels: int = 80) -> torch.Tensor:
    """audio [B, n] (already padded to its window) -> [B, n_mels, n // 160], Whisper-normalised per utterance."""
    x = torch.as_tensor(audio, dtype=torch.float32)
    if x.dim() == 1:
        x = x[None]
    key = (n_mels, x.device.index or 0)
    if key not in _FILTERS:
        _FILTERS[key] = torch.from_numpy(mel_filters(n_mels)).to(x.device)
    window = torch.hann_window(N_FFT, device=x.device)  # periodic, as Whisper's
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = spec[..., :-1].abs() ** 2  # [B, 201, T]
    logm = torch.clamp(_FILTERS[key] @ power, min=1e-10).log10()  # [B, n_mels, T]
    logm = torch.maximum(logm, logm.amax(dim=(1, 2), keepdim=True) - 8.0)
    return (logm + 4.0) / 4.0
