"""The contract of a modality tower: raw inputs -> token features [B, N, D] and a pooled vector [B, D]."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    tokens: torch.Tensor  # [B, N, D]
    pooled: torch.Tensor  # [B, D]
    mask: torch.Tensor | None = None  # [B, N], 1 for real tokens (text towers); None = all real


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
