"""`pixel-shuffle` connector: trade tokens for channels, then project (Idefics3 / SmolVLM, InternVL).

A square grid of N = h*w tokens becomes (h/s)*(w/s) tokens of s*s*Din channels: each output token concatenates an
s x s neighbourhood, ordered (row-in-block, column-in-block, channel) like transformers' `Idefics3Connector`, so its
`modality_projection.proj.weight` loads into `proj.weight` unchanged. The LM then sees s^2 times fewer image tokens.
`layout: sequence` is the same trade for a sequence without a grid (audio frames, video tokens): s consecutive
tokens become one of s*Din channels (the last group zero-padded), ceil(N / s) tokens in all.
"""

from __future__ import annotations

import torch
from torch import nn

from modalign.connectors.grid import square_side
from modalign.connectors.projectors import MLPProjector, TokenPositions, check_features
from modalign.registry import ConfigError


def pixel_shuffle(features: torch.Tensor, scale: int) -> torch.Tensor:
    """[B, h*w, D] -> [B, (h/s)*(w/s), s*s*D] for a square grid whose side is a multiple of `scale`."""
    b, n, d = features.shape
    side = square_side(n)
    if side is None or side % scale != 0:
        raise ValueError(
            f"pixel-shuffle needs a square grid of tokens whose side is a multiple of scale={scale}; got N={n}. "
            f"If the encoder prepends a CLS token, set skip_tokens=1; otherwise change scale or the image size"
        )
    g = side // scale
    x = features.reshape(b, g, scale, g, scale, d)  # [B, gy, dy, gx, dx, D]
    x = x.permute(0, 1, 3, 2, 4, 5)  # [B, gy, gx, dy, dx, D]
    return x.reshape(b, g * g, scale * scale * d)  # [B, N/s^2, s^2*D]


class PixelShuffleConnector(nn.Module):
    """Merge s x s neighbouring tokens, then project: [B, N, Din] -> [B, N/s^2, Dout].

    projector="linear" (Idefics3, no bias by default) or "mlp" (InternVL: LayerNorm then Linear-GELU-Linear).
    skip_tokens drops that many leading tokens first (a ViT's CLS token is not part of the grid). positions adds a
    learned position embedding to the grid's tokens before merging (see projectors.py).
    """

    fusion = "prefix"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        scale: int = 2,
        projector: str = "linear",
        bias: bool = False,
        skip_tokens: int = 0,
        positions: int = 0,
        layout: str = "grid",
    ):
        super().__init__()
        if scale < 1:
            raise ConfigError(f"pixel-shuffle scale must be >= 1, got {scale}")
        if layout not in ("grid", "sequence"):
            raise ConfigError(f"pixel-shuffle layout must be grid (images) or sequence (audio, video), got {layout!r}")
        self.in_dim, self.out_dim, self.scale, self.skip_tokens = in_dim, out_dim, scale, skip_tokens
        self.layout = layout
        merged = in_dim * scale * (scale if layout == "grid" else 1)
        self.pos = TokenPositions(positions, in_dim)
        if projector == "linear":
            self.norm = nn.Identity()
            self.proj = nn.Linear(merged, out_dim, bias=bias)
        elif projector == "mlp":
            self.norm = nn.LayerNorm(merged)
            self.proj = MLPProjector(merged, out_dim, bias=True)
        else:
            raise ConfigError(f"pixel-shuffle projector {projector!r} is unknown; choose linear or mlp")

    def num_tokens(self, n_in: int) -> int:
        n = n_in - self.skip_tokens
        if self.layout == "sequence":
            return -(-n // self.scale)
        side = square_side(n)
        if side is None or side % self.scale != 0:
            raise ValueError(
                f"pixel-shuffle (scale={self.scale}, skip_tokens={self.skip_tokens}) cannot take {n_in} tokens: "
                f"after skipping, the count must be a square whose side is a multiple of the scale"
            )
        return n // (self.scale * self.scale)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_features(features, self.in_dim, "pixel-shuffle connector")
        x = self.pos(features[:, self.skip_tokens :])
        if self.layout == "sequence":
            b, n, d = x.shape
            pad = -n % self.scale
            x = torch.nn.functional.pad(x, (0, 0, 0, pad)).reshape(b, (n + pad) // self.scale, self.scale * d)
            return self.proj(self.norm(x))  # [B, ceil(N/s), Dout]
        x = pixel_shuffle(x, self.scale)  # [B, N/s^2, s^2*Din]
        return self.proj(self.norm(x))  # [B, N/s^2, Dout]
