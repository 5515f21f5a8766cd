"""The contrastive head of a dual encoder: one projection per tower into the shared space, plus the learned
temperature (and, for SigLIP, bias) of the logits.

Init values follow the papers: CLIP starts at scale 1/0.07 (log-parameterised), SigLIP at scale 10 and bias -10
(so that the initial sigmoid says "not a pair" for the B^2 - B negatives). The scale is exp(log-scale) clamped at
100, as in CLIP, so the logits cannot blow up; the clamp sits in the forward, so a clamped scale gets no gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import ConfigError

MAX_LOGIT_SCALE = 100.0
INIT_LOG_SCALE = {"clip": math.log(1 / 0.07), "siglip": math.log(10.0)}
INIT_BIAS = -10.0


def projection(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """`linear`: one bias-free matrix (CLIP's text/visual projection). `mlp`: Linear-GELU-Linear, hidden = in_dim."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim, bias=False)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))
    raise ConfigError(f"head {kind!r} is not known; use `head: linear` or `head: mlp`")


class ContrastiveHead(nn.Module):
    def __init__(self, vision_dim: int, text_dim: int, embed_dim: int, kind: str = "linear", loss: str = "clip"):
        super().__init__()
        if loss not in INIT_LOG_SCALE:
            raise ConfigError(f"loss {loss!r} is not known; use `loss: clip` or `loss: siglip`")
        self.image_proj = projection(kind, vision_dim, embed_dim)
        self.text_proj = projection(kind, text_dim, embed_dim)
        self.log_logit_scale = nn.Parameter(torch.tensor(INIT_LOG_SCALE[loss]))
        # SigLIP only: CLIP's softmax is shift-invariant per row, so a bias there would get no gradient.
        self.logit_bias = nn.Parameter(torch.tensor(INIT_BIAS)) if loss == "siglip" else None

    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)  # scalar
