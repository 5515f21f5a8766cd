"""Map a VLM's LM image positions back to the vision tower's patches, one connector at a time.

`connector_patch_matrix(connector, features) -> C [B, M, N]`: row m says how much LM image token m draws on each
of the N patch tokens, so a relevance vector over the M image positions becomes one over patches as r @ C.
- `linear`, `mlp`: token-wise, C = I.
- `pixel-shuffle`: output token m concatenates an s x s block of patches; each gets 1/s^2 (skipped leading tokens,
  e.g. a CLS, get 0).
- `qformer`, `perceiver`: the queries' attention weights, recomputed from the connector's own `Attention` modules
  during a forward (captured by hooks, so the connector code is untouched), and rolled out through the stack
  (`rollout.resampler_rollout`).
Cross-attention fusion (`xattn`) puts no image tokens into the LM sequence; see vlm_attribution.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..connectors.attention import Attention
from ..connectors.perceiver import PerceiverResampler
from ..connectors.pixel_shuffle import PixelShuffleConnector
from ..connectors.projectors import LinearProjector, MLPProjector
from ..connectors.qformer import QFormer
from ..registry import ConfigError
from .rollout import resampler_rollout


def attention_weights(
    attn: Attention, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The softmax weights [B, H, Nq, Nk] that `attn(x, context, mask)` applies (same masking rule)."""
    b, nq, _ = x.shape
    nk = context.shape[1]
    q = attn.q_proj(x).view(b, nq, attn.heads, attn.head_dim).transpose(1, 2)  # [B, H, Nq, hd]
    k = attn.k_proj(context).view(b, nk, attn.heads, attn.head_dim).transpose(1, 2)  # [B, H, Nk, hd]
    if attn.q_norm is not None:
        q, k = attn.q_norm(q), attn.k_norm(k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dim)  # [B, H, Nq, Nk]
    if mask is not None:
        keep = mask.bool() | ~mask.bool().any(dim=-1, keepdim=True)  # [B, Nk]
        scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    return F.softmax(scores.float(), dim=-1)


def pixel_shuffle_matrix(n_in: int, scale: int, skip_tokens: int = 0) -> torch.Tensor:
    """[M, n_in]: output token (gy, gx) spreads 1/s^2 over the patches (gy*s + dy, gx*s + dx) of the grid."""
    n = n_in - skip_tokens
    side = math.isqrt(n)
    if side * side != n or side % scale:
        raise ValueError(
            f"pixel-shuffle with scale={scale} needs a square grid whose side is a multiple of the "
            f"scale; got {n} patch tokens"
        )
    g = side // scale
    c = torch.zeros(g * g, n_in)
    for gy in range(g):
        for gx in range(g):
            for dy in range(scale):
                for dx in range(scale):
                    c[gy * g + gx, skip_tokens + (gy * scale + dy) * side + gx * scale + dx] = 1.0 / scale**2
    return c


def _capture(modules: dict, run) -> list[tuple[str, torch.Tensor]]:
    """Run `run()` with hooks on the given Attention modules; return (tag, weights [B, H, Nq, Nk]) in call order."""
    calls: list[tuple[str, torch.Tensor]] = []
    handles = []
    for module, tag in modules.items():

        def hook(mod, args, kwargs, output, tag=tag):
            x, context = args[0], args[1] if len(args) > 1 else kwargs["context"]
            mask = args[2] if len(args) > 2 else kwargs.get("mask")
            calls.append((tag, attention_weights(mod, x, context, mask)))

        handles.append(module.register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return calls


def qformer_matrix(qformer: QFormer, features: torch.Tensor) -> torch.Tensor:
    """[B, K, N]: each query's rolled-out attention to the patches through self- and cross-attention layers."""
    tags = {}
    for layer in qformer.layers:
        tags[layer.self_attn] = "self"
        if layer.cross_attn is not None:
            tags[layer.cross_attn] = "cross"
    calls = _capture(tags, lambda: qformer(features))
    steps = [{"to_queries": w} if tag == "self" else {"to_patches": w} for tag, w in calls]
    return resampler_rollout(steps, features.shape[1])


def perceiver_matrix(perceiver: PerceiverResampler, features: torch.Tensor) -> torch.Tensor:
    """[B, K, N]: latents attend to [features; latents] in each layer; split the weights at N and roll out."""
    if features.dim() != 3:
        raise ValueError("attribution through the perceiver takes one image per sample ([B, N, D] features)")
    n = features.shape[1]
    calls = _capture({layer.attn: "joint" for layer in perceiver.layers}, lambda: perceiver(features))
    steps = [{"to_patches": w[..., :n], "to_queries": w[..., n:]} for _, w in calls]
    return resampler_rollout(steps, n)


def connector_patch_matrix(connector, features: torch.Tensor) -> torch.Tensor:
    """C [B, M, N] for a prefix connector and the vision tokens [B, N, D] it reads (see the module docstring)."""
    b, n = features.shape[:2]
    if isinstance(connector, (LinearProjector, MLPProjector)):
        return torch.eye(n).expand(b, n, n)
    if isinstance(connector, PixelShuffleConnector):
        return pixel_shuffle_matrix(n, connector.scale, connector.skip_tokens).expand(b, -1, -1)
    if isinstance(connector, QFormer):
        return qformer_matrix(connector, features)
    if isinstance(connector, PerceiverResampler):
        return perceiver_matrix(connector, features)
    raise ConfigError(
        f"attention rollout cannot map a {type(connector).__name__} connector back to patches; "
        f"supported: linear, mlp, pixel-shuffle, qformer, perceiver (use --method gradient instead)"
    )
