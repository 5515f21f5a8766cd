"""A user's own tower, as it would live in their package: importable, with get_config()."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from modalign.encoders.base import EncoderOutput, VisionEncoder


class PatchMeanTower(VisionEncoder):
    """Cut the image into a grid, average each cell's pixels, project: tokens [B, grid^2, width]."""

    def __init__(self, image_size: int = 16, grid: int = 2, width: int = 24):
        super().__init__()
        self.image_size, self.grid, self.hidden_size = image_size, grid, width
        self.proj = nn.Linear(3, width)

    def get_config(self) -> dict:
        return {"image_size": self.image_size, "grid": self.grid, "width": self.hidden_size}

    def preprocess(self, images) -> torch.Tensor:
        arr = np.stack(
            [np.asarray(im.convert("RGB").resize((self.image_size,) * 2), np.float32) / 255 for im in images]
        )
        return torch.from_numpy(arr).permute(0, 3, 1, 2)  # [B, 3, H, W]

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        cells = nn.functional.adaptive_avg_pool2d(pixel_values, self.grid).flatten(2).transpose(1, 2)  # [B, g^2, 3]
        tokens = self.proj(cells)
        return EncoderOutput(tokens=tokens, pooled=tokens.mean(1))
