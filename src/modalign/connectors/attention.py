"""Multi-head attention shared by the resampling connectors (qformer, perceiver) and gated cross-attention.

One module covers the variants the papers use: queries and keys/values from different widths (cross-attention),
with or without biases (BERT-style Q-Former has them, Flamingo/Idefics do not), and optional per-head
normalisation of queries and keys (Idefics' `qk_layer_norms`). Projections are named `q_proj`, `k_proj`,
`v_proj`, `o_proj` so checkpoints of the reference implementations map onto them by renaming only
(see `connectors/hf_port.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from modalign.registry import ConfigError


def make_norm(kind: str, dim: int, eps: float) -> nn.Module:
    """LayerNorm (Flamingo, BLIP-2) or RMSNorm (Llama-family LMs, Idefics)."""
    if kind == "layernorm":
        return nn.LayerNorm(dim, eps=eps)
    if kind == "rmsnorm":
        return nn.RMSNorm(dim, eps=eps)
    raise ConfigError(f"unknown norm {kind!r}; choose layernorm or rmsnorm")


def split_heads(heads: int, dim: int, head_dim: int | None, who: str) -> int:
    """Return the per-head width, failing with a message that says which setting to change."""
    if head_dim is not None:
        return head_dim
    if dim % heads != 0:
        raise ConfigError(f"{who}: width {dim} is not divisible by heads={heads}; change heads or set head_dim")
    return dim // heads


class Attention(nn.Module):
    """Queries from `x` [B, Nq, q_dim] attend to `context` [B, Nk, kv_dim]; returns [B, Nq, out_dim]."""

    def __init__(
        self,
        q_dim: int,
        kv_dim: int,
        heads: int,
        head_dim: int,
        out_dim: int | None = None,
        bias: bool = False,
        qk_norm: str | None = None,
        qk_norm_eps: float = 1e-5,
    ):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q_proj = nn.Linear(q_dim, inner, bias=bias)
        self.k_proj = nn.Linear(kv_dim, inner, bias=bias)
        self.v_proj = nn.Linear(kv_dim, inner, bias=bias)
        self.o_proj = nn.Linear(inner, out_dim or q_dim, bias=bias)
        # Normalising q and k per head bounds the logits; Idefics uses it to keep large runs stable.
        self.q_norm = make_norm(qk_norm, head_dim, qk_norm_eps) if qk_norm else None
        self.k_norm = make_norm(qk_norm, head_dim, qk_norm_eps) if qk_norm else None

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, nq, _ = x.shape
        nk = context.shape[1]
        q = self.q_proj(x).view(b, nq, self.heads, self.head_dim).transpose(1, 2)  # [B, H, Nq, hd]
        k = self.k_proj(context).view(b, nk, self.heads, self.head_dim).transpose(1, 2)  # [B, H, Nk, hd]
        v = self.v_proj(context).view(b, nk, self.heads, self.head_dim).transpose(1, 2)  # [B, H, Nk, hd]
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        attn_mask = None
        if mask is not None:
            # A fully masked row would give NaN through softmax (and through its backward); let such rows attend
            # to everything and let the caller zero them out (see `rows_with_context`).
            keep = mask.bool() | ~mask.bool().any(dim=-1, keepdim=True)  # [B, Nk]
            attn_mask = keep[:, None, None, :]  # [B, 1, 1, Nk]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, H, Nq, hd]
        return self.o_proj(out.transpose(1, 2).reshape(b, nq, self.heads * self.head_dim))  # [B, Nq, out]


def rows_with_context(mask: torch.Tensor | None) -> torch.Tensor | None:
    """[B, Nk] key mask -> [B, 1, 1] bool, False for samples with no valid key (their attention output is dropped)."""
    if mask is None:
        return None
    return mask.bool().any(dim=-1)[:, None, None]


def check_mask(mask: torch.Tensor | None, features: torch.Tensor, who: str) -> None:
    if mask is not None and tuple(mask.shape) != tuple(features.shape[:2]):
        raise ValueError(
            f"{who}: mask must be [B, N] = {tuple(features.shape[:2])} (True = real token), got {tuple(mask.shape)}"
        )
