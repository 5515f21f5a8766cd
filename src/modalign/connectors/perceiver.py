"""`perceiver` connector: Flamingo's Perceiver Resampler, a fixed number of latents summarising any number of tokens.

Per layer, the latents attend to the concatenation [features; latents] (so they also update among themselves),
then a pre-norm FFN, both residual; a final LayerNorm closes the stack. Learned time embeddings tell frames of a
video apart (features [B, T, N, D]); optional learned position embeddings tell patches apart, since attention alone
is permutation invariant. Without them it computes what transformers' `IdeficsPerceiverResampler`
(models/idefics/perceiver.py) computes - `hf_port.perceiver_from_idefics` maps its weights; Idefics uses a ReLU FFN
(`act="relu"`), Flamingo's reference GELU (the default). The resampler works at the feature width Din, then a linear
map sends the latents to the LM width.
"""

from __future__ import annotations

import torch
from torch import nn

from modalign.connectors.attention import Attention, split_heads
from modalign.connectors.projectors import check_features, make_activation
from modalign.registry import ConfigError


class PerceiverLayer(nn.Module):
    """latents += attn(norm(latents) -> [norm(context); norm(latents)]); latents += ffn(norm(latents))."""

    def __init__(self, dim: int, heads: int, head_dim: int, ff_dim: int, act: str, qk_norm: str | None):
        super().__init__()
        self.context_norm = nn.LayerNorm(dim)
        self.latents_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, dim, heads, head_dim, out_dim=dim, bias=False, qk_norm=qk_norm)
        self.ff_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ff_dim, bias=False)
        self.act = make_activation(act)
        self.fc2 = nn.Linear(ff_dim, dim, bias=False)

    def forward(self, context: torch.Tensor, latents: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        normed = self.latents_norm(latents)  # [B, K, D]
        kv = torch.cat([self.context_norm(context), normed], dim=1)  # [B, N+K, D]
        if mask is not None:
            mask = torch.cat([mask.bool(), mask.new_ones(latents.shape[:2], dtype=torch.bool)], dim=1)  # [B, N+K]
        latents = latents + self.attn(normed, kv, mask)
        return latents + self.fc2(self.act(self.fc1(self.ff_norm(latents))))  # [B, K, D]


class PerceiverResampler(nn.Module):
    """[B, N, Din] (or [B, T, N, Din] frames) -> [B, num_latents, Dout]."""

    fusion = "prefix"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_latents: int = 64,
        depth: int = 2,
        heads: int = 8,
        head_dim: int | None = None,
        ff_mult: int = 4,
        act: str = "gelu",
        qk_norm: str | None = None,
        max_frames: int = 1,
        max_positions: int = 0,
        project: bool = True,
    ):
        super().__init__()
        if num_latents < 1 or depth < 1 or max_frames < 1:
            raise ConfigError("perceiver needs num_latents >= 1, depth >= 1 and max_frames >= 1")
        self.in_dim, self.out_dim, self.num_latents = in_dim, out_dim if project else in_dim, num_latents
        head_dim = split_heads(heads, in_dim, head_dim, "perceiver")
        self.latents = nn.Parameter(torch.randn(num_latents, in_dim))  # [K, D]
        self.time_embed = nn.Parameter(torch.randn(max_frames, 1, in_dim) * 0.02)  # [T, 1, D]
        # Position embeddings are optional: Flamingo's NFNet features carry position already, a ViT's tokens too.
        self.pos_embed = nn.Parameter(torch.randn(max_positions, in_dim) * 0.02) if max_positions else None
        self.layers = nn.ModuleList(
            PerceiverLayer(in_dim, heads, head_dim, ff_mult * in_dim, act, qk_norm) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(in_dim)
        # project=False keeps the media at Din, which is what a cross-attention LM reads (see xattn.py).
        self.proj = nn.Linear(in_dim, out_dim) if project else nn.Identity()

    def num_tokens(self, n_in: int) -> int:
        return self.num_latents

    def resample(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Latents after the final norm, before the projection: [B, K, Din]."""
        frames = features if features.dim() == 4 else features[:, None]  # [B, T, N, D]
        check_features(frames.flatten(1, 2), self.in_dim, "perceiver connector")
        b, t, n, _ = frames.shape
        if t > self.time_embed.shape[0]:
            raise ValueError(f"perceiver got {t} frames but was built with max_frames={self.time_embed.shape[0]}")
        if self.pos_embed is not None:
            if n > self.pos_embed.shape[0]:
                raise ValueError(f"perceiver got {n} tokens per frame but max_positions={self.pos_embed.shape[0]}")
            frames = frames + self.pos_embed[:n]
        context = (frames + self.time_embed[:t]).reshape(b, t * n, self.in_dim)  # [B, T*N, D]
        if mask is not None:
            mask = mask.reshape(b, -1)
            if mask.shape[1] != t * n:
                raise ValueError(f"perceiver mask must cover every token ({t * n} per sample), got {mask.shape[1]}")
        latents = self.latents.expand(b, -1, -1)  # [B, K, D]
        for layer in self.layers:
            latents = layer(context, latents, mask)
        return self.norm(latents)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.proj(self.resample(features, mask))  # [B, K, Dout]
