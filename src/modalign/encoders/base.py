"""The contract of a modality tower: raw inputs -> token features [B, N, D] and a pooled vector [B, D].

Vision towers take pixels, text towers token ids, audio towers the output of their own `preprocess` (log-mel frames
or raw samples) and give a mask of the tokens that cover real audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    tokens: torch.Tensor  # [B, N, D]
    pooled: torch.Tensor  # [B, D]
    mask: torch.Tensor | None = None  # [B, N], 1 for real tokens (text and audio towers); None = all real


class VisionEncoder(nn.Module):
    """Subclasses set `hidden_size`, `image_size` and implement `preprocess` and `forward`."""

    hidden_size: int
    image_size: int

    def preprocess(self, images) -> torch.Tensor:  # list of PIL images -> [B, 3, H, W] float
        raise NotImplementedError

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        raise NotImplementedError


class TextEncoder(nn.Module):
    """Subclasses set `hidden_size` and implement `tokenize` and `forward`."""

    hidden_size: int

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:  # input_ids, attention_mask
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        raise NotImplementedError


class AudioEncoder(nn.Module):
    """Subclasses set `hidden_size` and implement `preprocess`, `forward` and `num_tokens`.

    `preprocess(clips)` takes waveforms (1-D float32 at 16 kHz) or audio file paths and returns the tower's input
    tensors (a dict); `forward(**inputs)` returns tokens [B, N, D], the mask [B, N] of tokens that cover the clip
    (real tokens come first) and the pooled vector (the mean over real tokens); `num_tokens(inputs)` [B] is that
    mask's row sums computed without running the tower, which is what a language model's placeholders need.
    """

    hidden_size: int
    sampling_rate: int = 16000

    def preprocess(self, clips: list) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, **inputs: torch.Tensor) -> EncoderOutput:
        raise NotImplementedError

    def num_tokens(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B, N, D] averaged over the tokens where mask [B, N] is 1 -> [B, D]."""
    w = mask.to(tokens.dtype).unsqueeze(-1)  # [B, N, 1]
    return (tokens * w).sum(1) / w.sum(1).clamp(min=1.0)


def prefix_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """[B, width] long mask with the first lengths[b] entries of row b set."""
    return (torch.arange(width)[None, :] < lengths.reshape(-1, 1)).long()
