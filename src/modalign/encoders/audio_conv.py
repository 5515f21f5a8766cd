"""`conv`: an audio tower trained from scratch — log-mel frames -> strided temporal convolutions -> tokens.

The 80 mel bins of each 10 ms frame are the input channels of a stack of 1-D convolutions over time (Whisper's own
stem is two of them, the second with stride 2); each layer is Conv1d -> GELU, its stride shortens the sequence, and
a LayerNorm closes the stack. With the default strides (2, 2, 2) one token covers 80 ms. Real tokens are those
whose frames lie inside the clip (the same length arithmetic as the convolutions), the pooled vector their mean.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import ConfigError
from .audio_processor import AudioProcessor
from .base import AudioEncoder, EncoderOutput, masked_mean, prefix_mask


class ConvAudioTower(AudioEncoder):
    """Log-mel [B, n_mels, T] -> tokens [B, T / prod(strides), hidden_size]."""

    def __init__(
        self,
        hidden_size: int = 256,
        strides: tuple[int, ...] | list[int] = (2, 2, 2),
        kernel_size: int = 3,
        n_mels: int = 80,
        window_seconds: float | None = None,
        max_seconds: float = 30.0,
        trim: bool = False,
    ):
        super().__init__()
        strides = tuple(int(s) for s in strides)
        if not strides or any(s < 1 for s in strides):
            raise ConfigError(f"conv audio tower: strides must be a non-empty list of integers >= 1, got {strides}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"conv audio tower: kernel_size must be odd and >= 1, got {kernel_size}")
        self.hidden_size, self.strides, self.kernel_size = int(hidden_size), strides, int(kernel_size)
        self.processor = AudioProcessor(window_seconds, n_mels, max_seconds, trim=trim)
        layers: list[nn.Module] = []
        width = n_mels
        for s in strides:
            layers += [nn.Conv1d(width, self.hidden_size, kernel_size, stride=s, padding=kernel_size // 2), nn.GELU()]
            width = self.hidden_size
        self.convs = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(self.hidden_size)
        self._config = {
            "hidden_size": hidden_size,
            "strides": list(strides),
            "kernel_size": kernel_size,
            "n_mels": n_mels,
            "window_seconds": window_seconds,
            "max_seconds": max_seconds,
            "trim": trim,
        }

    def get_config(self) -> dict:
        return dict(self._config)

    def preprocess(self, clips: list) -> dict[str, torch.Tensor]:
        return self.processor(list(clips))

    def _lengths(self, frames: torch.Tensor) -> torch.Tensor:
        n, p = frames.clone(), self.kernel_size // 2
        for s in self.strides:
            n = (n + 2 * p - self.kernel_size) // s + 1
        return n.clamp(min=1)

    def num_tokens(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self._lengths(inputs["frames"])

    def forward(self, input_features: torch.Tensor, frames: torch.Tensor, **_: torch.Tensor) -> EncoderOutput:
        x = self.convs(input_features)  # [B, D, T']
        tokens = self.norm(x.transpose(1, 2))  # [B, T', D]
        mask = prefix_mask(self._lengths(frames).clamp(max=tokens.shape[1]), tokens.shape[1])
        return EncoderOutput(tokens=tokens, pooled=masked_mean(tokens, mask), mask=mask)


def build_conv_audio(
    hidden_size: int = 256,
    strides: list[int] = (2, 2, 2),
    kernel_size: int = 3,
    n_mels: int = 80,
    window_seconds: float | None = None,
    max_seconds: float = 30.0,
    trim: bool = False,
) -> ConvAudioTower:
    """From scratch: Whisper log-mel -> strided Conv1d + GELU layers -> LayerNorm; a token per prod(strides) x 10 ms."""
    return ConvAudioTower(hidden_size, strides, kernel_size, n_mels, window_seconds, max_seconds, trim)
