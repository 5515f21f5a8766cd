"""Token-wise projectors: `linear` (LLaVA-1.0) and `mlp` (LLaVA-1.5's Linear-GELU-Linear).

Both keep one LM token per encoder token (M = N). `positions=N` adds a learned position embedding (zero at
initialisation) to the N input tokens: a ViT's tokens carry their place in the image, a CNN's cells barely do, and a
from-scratch LM with rotary positions only sees where a token sits in the sequence relative to the question, so
"where is the red circle?" has no absolute place to read. In a recipe, `positions: true` sizes the table to the
vision tower's token count; `positions_init: sincos` starts it from 2-D sine-cosine places and `input_norm: true`
layer-normalises the tokens first (see TokenPositions). The `mlp` names its layers `linear_1` / `linear_2` like
transformers' `LlavaMultiModalProjector` (models/llava/modeling_llava.py), so a state dict maps onto that class
one to one (prefix `multi_modal_projector.`), which is what lets a trained VLM export as an HF LLaVA checkpoint.
"""

from __future__ import annotations

import torch
from torch import nn

from modalign.connectors.grid import square_side
from modalign.registry import ConfigError

# Activations by the names transformers' ACT2FN uses; "gelu" is the exact (erf) GELU that LLaVA-1.5 trains with.
ACTIVATIONS = {
    "gelu": lambda: nn.GELU(),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
    "silu": lambda: nn.SiLU(),
}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]()


def check_features(features: torch.Tensor, in_dim: int, who: str) -> None:
    """Fail early with a message naming the connector, instead of a matmul shape error deep inside."""
    if features.dim() != 3:
        raise ValueError(f"{who} expects features of shape [B, N, {in_dim}], got {tuple(features.shape)}")
    if features.shape[-1] != in_dim:
        raise ValueError(
            f"{who} was built with in_dim={in_dim} but got features with {features.shape[-1]} channels; "
            f"set in_dim to the vision encoder's hidden_size"
        )


POSITION_INITS = ("zeros", "sincos")


def sincos_2d(n: int, dim: int) -> torch.Tensor:
    """[n, dim] fixed 2-D sine-cosine positions of a square grid (MAE / ViT style): half the channels for rows."""
    side = square_side(n)
    if side is None or dim % 4:
        raise ConfigError(f"sincos positions need a square grid and a width divisible by 4; got {n} tokens of {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    parts = []
    for coord in (rows.flatten(), cols.flatten()):
        angle = coord[:, None].double() * omega[None]
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, dim=1).float()


class TokenPositions(nn.Module):
    """A learned [N, D] position table added to the tower's tokens (no-op when positions == 0).

    `init`: "zeros" (nothing changes at the start of training) or "sincos" (each cell starts from its 2-D place, so
    "where" can be read before the table has learned anything). `norm`: a LayerNorm on the tokens first. A CNN's
    features can be large (EfficientNet-Lite0's block 7: norm ~60 per cell) next to a table that starts at 0 and
    moves by the learning rate, which leaves the place of a cell a few percent of its vector; normalised, they weigh
    alike.
    """

    def __init__(self, positions: int, dim: int, init: str = "zeros", norm: bool = False):
        super().__init__()
        if positions < 0:
            raise ConfigError(f"positions must be >= 0 (0 = none), got {positions}")
        if init not in POSITION_INITS:
            raise ConfigError(f"positions_init must be one of {', '.join(POSITION_INITS)}, got {init!r}")
        self.positions = positions
        self.norm = nn.LayerNorm(dim) if norm else None
        self.table = None
        if positions:
            start = sincos_2d(positions, dim) if init == "sincos" else torch.zeros(positions, dim)
            self.table = nn.Parameter(start)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            features = self.norm(features)
        if self.table is None:
            return features
        if features.shape[1] != self.positions:
            raise ValueError(
                f"the connector was built with positions={self.positions} but got {features.shape[1]} "
                "tokens; set positions to the vision tower's token count (num_tokens)"
            )
        return features + self.table


class LinearProjector(nn.Module):
    """One linear map per token: [B, N, Din] -> [B, N, Dout]."""

    fusion = "prefix"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        positions: int = 0,
        positions_init: str = "zeros",
        input_norm: bool = False,
    ):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.pos = TokenPositions(positions, in_dim, positions_init, input_norm)
        self.proj = nn.Linear(in_dim, out_dim, bias=bias)

    def num_tokens(self, n_in: int) -> int:
        return n_in

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_features(features, self.in_dim, "linear connector")
        return self.proj(self.pos(features))  # [B, N, Dout]


class MLPProjector(nn.Module):
    """Linear -> activation -> Linear per token (LLaVA-1.5 `mlp2x_gelu`): [B, N, Din] -> [B, N, Dout]."""

    fusion = "prefix"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int | None = None,
        act: str = "gelu",
        bias: bool = True,
        positions: int = 0,
        positions_init: str = "zeros",
        input_norm: bool = False,
    ):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.pos = TokenPositions(positions, in_dim, positions_init, input_norm)
        hidden_dim = hidden_dim or out_dim  # LLaVA uses the LM width for the hidden layer
        self.linear_1 = nn.Linear(in_dim, hidden_dim, bias=bias)
        self.act = make_activation(act)
        self.linear_2 = nn.Linear(hidden_dim, out_dim, bias=bias)

    def num_tokens(self, n_in: int) -> int:
        return n_in

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        check_features(features, self.in_dim, "mlp connector")
        return self.linear_2(self.act(self.linear_1(self.pos(features))))  # [B, N, Dout]
