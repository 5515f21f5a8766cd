"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): how much each output
position draws on each input position once attention is followed through every layer.

Per layer the heads are averaged, the residual connection is accounted for by adding the identity (a token keeps
its own information) and rows are renormalised to sum to 1; the layers' matrices are then multiplied from the first
to the last. `resampler_rollout` does the same for connectors whose learned queries read the image through
cross-attention (Q-Former, Perceiver Resampler): there the image patches are fixed inputs and only the queries'
rows change, so the joint matrix over [patches; queries] is block lower-triangular and only its query rows need
carrying: R_qp (query -> patch) and R_qq (query -> initial query).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def fuse_heads(attn: torch.Tensor, head_fusion: str = "mean") -> torch.Tensor:
    """[B, H, Tq, Tk] -> [B, Tq, Tk] (a [B, Tq, Tk] input is returned as is)."""
    if attn.dim() == 3:
        return attn
    if attn.dim() != 4:
        raise ValueError(f"attention weights must be [B, H, Tq, Tk] or [B, Tq, Tk], got {tuple(attn.shape)}")
    if head_fusion == "mean":
        return attn.mean(dim=1)
    if head_fusion == "max":
        return attn.amax(dim=1)
    raise ValueError(f"head_fusion must be 'mean' (the paper's) or 'max', got {head_fusion!r}")


def _row_normalise(a: torch.Tensor) -> torch.Tensor:
    # rows that are all zero (fully masked padding) stay zero instead of turning into NaN
    return a / a.sum(dim=-1, keepdim=True).clamp(min=1e-12)


def attention_rollout(
    attentions: Sequence[torch.Tensor], head_fusion: str = "mean", add_identity: bool = True
) -> torch.Tensor:
    """Rollout of a stack of self-attention maps, first layer first: [B, T, T], row t = position t's sources.

    R = Â_L @ ... @ Â_1 with Â_l = rownorm(mean_h A_l + I): with softmax rows (summing to 1) that is the paper's
    0.5 * A + 0.5 * I.
    """
    if len(attentions) == 0:
        raise ValueError("attention_rollout needs at least one layer's attention weights")
    rollout = None
    for layer, attn in enumerate(attentions):
        a = fuse_heads(attn.float(), head_fusion)  # [B, T, T]
        if a.shape[-1] != a.shape[-2]:
            raise ValueError(f"layer {layer}: self-attention must be square, got {tuple(a.shape)}")
        if add_identity:
            a = _row_normalise(a + torch.eye(a.shape[-1], dtype=a.dtype))
        rollout = a if rollout is None else a @ rollout  # [B, T, T]
    return rollout


def resampler_rollout(steps: Sequence[dict], n_patches: int, head_fusion: str = "mean") -> torch.Tensor:
    """Rollout through learned queries that read patches: [B, K, N], row k = how much query k draws on each patch.

    Each step is one residual attention sub-block of the queries, a dict with `to_patches` ([B, (H,) K, N], the
    queries' attention to the image features, or None) and `to_queries` ([B, (H,) K, K], attention among the
    queries, or None). A perceiver layer attends to [features; latents] at once and gives both; a Q-Former
    layer gives a self-attention step (`to_queries`) and a cross-attention step (`to_patches`). With the residual
    (identity on the query block) each joint row is renormalised, then
    R_qp <- Â_qp + Â_qq R_qp and R_qq <- Â_qq R_qq, starting from R_qp = 0, R_qq = I.
    """
    r_qp = r_qq = None
    for i, step in enumerate(steps):
        a_qp, a_qq = step.get("to_patches"), step.get("to_queries")
        if a_qp is None and a_qq is None:
            raise ValueError(f"resampler step {i} has neither to_patches nor to_queries")
        a_qp = None if a_qp is None else fuse_heads(a_qp.float(), head_fusion)  # [B, K, N]
        a_qq = None if a_qq is None else fuse_heads(a_qq.float(), head_fusion)  # [B, K, K]
        ref = a_qp if a_qp is not None else a_qq
        b, k = ref.shape[0], ref.shape[1]
        if a_qp is None:
            a_qp = ref.new_zeros(b, k, n_patches)
        if a_qp.shape[-1] != n_patches:
            raise ValueError(f"resampler step {i}: attention to {a_qp.shape[-1]} patches, expected {n_patches}")
        if a_qq is None:
            a_qq = ref.new_zeros(b, k, k)
        a_qq = a_qq + torch.eye(k, dtype=a_qq.dtype)  # the residual
        norm = (a_qp.sum(-1, keepdim=True) + a_qq.sum(-1, keepdim=True)).clamp(min=1e-12)
        a_qp, a_qq = a_qp / norm, a_qq / norm
        if r_qp is None:
            r_qp, r_qq = a_qp.new_zeros(b, k, n_patches), torch.eye(k, dtype=a_qq.dtype).expand(b, k, k)
        r_qp, r_qq = a_qp + a_qq @ r_qp, a_qq @ r_qq  # [B, K, N], [B, K, K]
    if r_qp is None:
        raise ValueError("resampler_rollout needs at least one step")
    return r_qp
