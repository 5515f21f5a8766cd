"""Layer 2: the training losses of the alignment paths — CLIP (InfoNCE), SigLIP (pairwise sigmoid), LM next-token.

Contrastive losses take L2-normalised embeddings [B, E] and the already-exponentiated `logit_scale` (a scalar
tensor; the model keeps the log). Under `torch.distributed` with world_size > 1 they see the global batch, and
every rank must hold the same number of rows (drop the last incomplete batch).

Gradient scaling under DDP. Every rank's loss depends on every rank's features, and the collectives send each
rank's share of the gradient back to the rank that owns the features. So with `gather_with_grad=True` (CLIP) and
for SigLIP, the gradient that lands on a rank's local features is `world_size` x the gradient of the
single-process full-batch loss; DistributedDataParallel then *averages* parameter gradients over ranks, which
divides that factor out again: the update equals the single-process update on the full batch. Replicated scalars
(logit_scale, logit_bias) get their per-rank share, and the DDP average of those equals the full-batch gradient.
With `gather_with_grad=False` gradients stop at the gather: without `local_loss` each rank's features get exactly
their full-batch gradient, so after DDP's average the tower/head gradients are 1/world_size of the full-batch
ones (the logit scale's stays exact); with `local_loss` it is an approximation (features get no gradient as
other ranks' negatives). Prefer the default `gather_with_grad=True`.

Reference: open_clip `loss.py` (ClipLoss, SigLipLoss); the tests compare values and gradients against it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import distributed as dist

# ---------------------------------------------------------------------------------------------------- helpers


def _world() -> tuple[int, int]:
    """(rank, world_size) of the default process group, (0, 1) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _check_pair(image_emb: torch.Tensor, text_emb: torch.Tensor, who: str) -> None:
    if image_emb.dim() != 2 or text_emb.dim() != 2:
        raise ValueError(
            f"{who}: embeddings must be [B, E]; got image {tuple(image_emb.shape)}, text {tuple(text_emb.shape)}"
        )
    if image_emb.shape != text_emb.shape:
        raise ValueError(
            f"{who}: image and text embeddings must pair up row by row with the same width; got "
            f"image {tuple(image_emb.shape)} vs text {tuple(text_emb.shape)}"
        )


def _as_tensor(x, like: torch.Tensor) -> torch.Tensor:
    return x if torch.is_tensor(x) else torch.tensor(float(x), dtype=like.dtype, device=like.device)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient of the gathered tensor and keeps this rank's slice.

    The same op as torch.distributed.nn.functional.all_gather (deprecated in torch 2.13; its suggested
    replacement is private), on public collectives that gloo supports.
    """

    @staticmethod
    def forward(ctx, x, world: int, rank: int):
        ctx.rows, ctx.rank = x.shape[0], rank
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)  # [world * b, E]

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # sum of every rank's loss gradient
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows], None, None


def _all_gather(x: torch.Tensor, with_grad: bool, world: int, rank: int) -> torch.Tensor:
    """Concatenate every rank's `x` along dim 0 -> [world * b, E]. Every rank must hold the same b rows."""
    if with_grad:
        return _GatherWithGrad.apply(x, world, rank)
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.detach())
    parts[rank] = x  # the local slice keeps its graph, so local features still get their gradient
    return torch.cat(parts, dim=0)


# ---------------------------------------------------------------------------------------------------- CLIP


def _targets(
    labels_rows: torch.Tensor | None, labels_cols: torch.Tensor | None, rows: int, offset: int, like: torch.Tensor
) -> torch.Tensor:
    """Class indices (one positive per row) or, with labels, soft targets spread over same-label columns."""
    if labels_rows is None:
        return torch.arange(rows, device=like.device) + offset
    same = (labels_rows[:, None] == labels_cols[None, :]).to(like.dtype)  # [r, c], in the logits' precision
    return same / same.sum(1, keepdim=True)


def _gather_labels(labels: torch.Tensor, world: int) -> torch.Tensor:
    parts = [torch.empty_like(labels) for _ in range(world)]
    dist.all_gather(parts, labels.contiguous())
    return torch.cat(parts)


def clip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale,
    *,
    local_loss: bool = False,
    gather_with_grad: bool = True,
    labels: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE: mean of image->text and text->image cross entropy over the (global) batch.

    `local_loss` (distributed only): each rank scores only its own rows against all columns — [b, W*b] logits
    instead of [W*b, W*b] — with labels arange(b) + b*rank; same gradients, memory linear in the global batch.
    Returns this rank's loss; with `local_loss` the mean over ranks equals the full-batch loss.
    `labels` ([b] class ids, optional): pairs that share a label are all positives of each other, the target
    spread evenly over them (UniCL, Yang et al. 2022) — for class-level captions, where plain InfoNCE would push
    apart an image and a caption of its own class. With distinct labels it is exactly the plain loss.
    """
    _check_pair(image_emb, text_emb, "clip_loss")
    if labels is not None and labels.shape != image_emb.shape[:1]:
        raise ValueError(f"clip_loss: labels must be [B] = [{image_emb.shape[0]}], got {tuple(labels.shape)}")
    scale = _as_tensor(logit_scale, image_emb)
    rank, world = _world()
    b = image_emb.shape[0]
    if world == 1:
        logits_img = scale * image_emb @ text_emb.T  # [B, B]
        target = _targets(labels, labels, b, 0, image_emb)
        return (F.cross_entropy(logits_img, target) + F.cross_entropy(logits_img.T, target)) / 2
    all_img = _all_gather(image_emb, gather_with_grad, world, rank)  # [W*b, E]
    all_txt = _all_gather(text_emb, gather_with_grad, world, rank)  # [W*b, E]
    all_labels = _gather_labels(labels, world) if labels is not None else None
    if local_loss:
        logits_img = scale * image_emb @ all_txt.T  # [b, W*b]
        logits_txt = scale * text_emb @ all_img.T  # [b, W*b]
        target = _targets(labels, all_labels, b, b * rank, image_emb)
    else:
        logits_img = scale * all_img @ all_txt.T  # [W*b, W*b]
        logits_txt = logits_img.T
        target = _targets(all_labels, all_labels, world * b, 0, image_emb)
    return (F.cross_entropy(logits_img, target) + F.cross_entropy(logits_txt, target)) / 2


# ---------------------------------------------------------------------------------------------------- SigLIP


def _sigmoid_block(x, t, scale, bias, pos_offset: int | None):
    """Plain (autograd) SigLIP terms of a row block: -log sigmoid(y * logits) [c, M], the reference formula.

    y = +1 at column `row + pos_offset` (the positive pair), -1 elsewhere; pos_offset None = all negatives.
    """
    logits = scale * (x @ t.T) + bias  # [c, M]
    sign = torch.full_like(logits, -1.0)
    if pos_offset is not None:
        sign.diagonal(offset=pos_offset).fill_(1.0)
    return -F.logsigmoid(sign * logits)  # [c, M]


def _block_logits(x, t, scale: float, bias: float) -> torch.Tensor:
    """s * x t^T + b as one fresh [c, M] buffer (the matmul output, scaled in place)."""
    return torch.addmm(torch.full((1, t.shape[0]), bias, dtype=x.dtype, device=x.device), x, t.T, alpha=scale)


class _ChunkedSigmoidLoss(torch.autograd.Function):
    """-sum log sigmoid(y * (s x t^T + b)) / n, evaluated `chunk` rows at a time, forward AND backward.

    Only the inputs are saved; backward recomputes each [chunk, M] block, so peak memory is O(chunk * M) instead
    of the O(B * M) a plain loop would hold (autograd keeps every chunk's logits alive until backward).
    Per pair the loss is softplus(z) for a negative and softplus(-z) for a positive (z the logit), and
    dL/dz = (sigmoid(z) - [positive]) / n: one [chunk, M] buffer in backward, two in forward.
    """

    @staticmethod
    def forward(ctx, x, t, scale, bias, pos_offset, n, chunk):
        s, b = float(scale), float(bias)
        total = torch.zeros((), dtype=torch.float64, device=x.device)  # float64 across chunks: order-insensitive
        for a in range(0, x.shape[0], chunk):
            z = _block_logits(x[a : a + chunk], t, s, b)  # [c, M]
            total += F.softplus(z).sum().double()  # every pair as a negative ...
            off = _shift(pos_offset, a)
            if off is not None:  # ... then the positives corrected
                zp = z.diagonal(offset=off)  # [<=c]
                total += (F.softplus(-zp) - F.softplus(zp)).sum().double()
        ctx.save_for_backward(x, t, scale, bias)
        ctx.pos_offset, ctx.n, ctx.chunk = pos_offset, n, chunk
        return (total / n).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x, t, scale, bias = ctx.saved_tensors
        s, b, w = float(scale), float(bias), float(grad_out) / ctx.n
        gx, gt = torch.zeros_like(x), torch.zeros_like(t)
        gs = torch.zeros((), dtype=torch.float64, device=x.device)
        gb = torch.zeros((), dtype=torch.float64, device=x.device)
        for a in range(0, x.shape[0], ctx.chunk):
            xc = x[a : a + ctx.chunk]  # [c, E]
            g = _block_logits(xc, t, s, b).sigmoid_()  # [c, M], becomes dL/dz in place
            off = _shift(ctx.pos_offset, a)
            if off is not None:
                g.diagonal(offset=off).sub_(1.0)
            g.mul_(w)
            gt_rows = g @ t  # [c, E] = dL/d(s x) per row
            gx[a : a + ctx.chunk] = s * gt_rows
            gt.addmm_(g.T, xc, alpha=s)  # [M, E]
            gs += (xc * gt_rows).sum().double()  # dL/ds = sum_ij g_ij x_i.t_j
            gb += g.sum().double()
        return gx, gt, gs.to(scale.dtype).reshape(scale.shape), gb.to(bias.dtype).reshape(bias.shape), None, None, None


def _shift(pos_offset: int | None, row_start: int) -> int | None:
    # Row r of a block starting at row_start is global row r + row_start; its positive column is that + offset.
    return None if pos_offset is None else pos_offset + row_start


def _sigmoid_loss(x, t, scale, bias, pos_offset: int | None, n: int, chunk_size: int | None) -> torch.Tensor:
    if chunk_size is None or chunk_size >= x.shape[0]:
        return _sigmoid_block(x, t, scale, bias, pos_offset).sum() / n  # [B, M] blocks held by autograd
    return _ChunkedSigmoidLoss.apply(x, t, scale, bias, pos_offset, n, chunk_size)


class _RingPass(torch.autograd.Function):
    """Send `x` to rank+1 and receive rank-1's; the gradient travels the opposite way."""

    @staticmethod
    def forward(ctx, x, to_rank: int, from_rank: int):
        ctx.to_rank, ctx.from_rank = to_rank, from_rank
        return _exchange(x, to_rank, from_rank)

    @staticmethod
    def backward(ctx, grad):
        return _exchange(grad.contiguous(), ctx.from_rank, ctx.to_rank), None, None


def _exchange(x: torch.Tensor, to_rank: int, from_rank: int) -> torch.Tensor:
    received = torch.empty_like(x)
    ops = [dist.P2POp(dist.isend, x.contiguous(), to_rank), dist.P2POp(dist.irecv, received, from_rank)]
    for req in dist.batch_isend_irecv(ops):
        req.wait()
    return received


def siglip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale,
    logit_bias,
    chunk_size: int | None = None,
    *,
    exchange: str = "gather",
) -> torch.Tensor:
    """Pairwise sigmoid loss: logits = s * X Y^T + b, labels 2I - 1, L = -sum log sigmoid(labels * logits) / B.

    `chunk_size`: rows of image embeddings scored at a time; same value and gradients, peak memory
    O(chunk_size * B) instead of O(B^2). Distributed: this rank's block holds the positives, every other
    rank's text block contributes negatives only. `exchange="gather"` all-gathers text features (with
    gradient); `"ring"` passes them round the ranks one block at a time (memory O(b^2) per step, as in the
    SigLIP paper). Returns this rank's loss; the mean over ranks equals the full-batch loss.
    """
    _check_pair(image_emb, text_emb, "siglip_loss")
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError(f"siglip_loss: chunk_size must be a positive number of rows or None, got {chunk_size}")
    if exchange not in ("gather", "ring"):
        raise ValueError(f"siglip_loss: exchange must be 'gather' or 'ring', got {exchange!r}")
    scale, bias = _as_tensor(logit_scale, image_emb), _as_tensor(logit_bias, image_emb)
    rank, world = _world()
    b = image_emb.shape[0]
    if world == 1:
        return _sigmoid_loss(image_emb, text_emb, scale, bias, 0, b, chunk_size)
    if exchange == "gather":
        all_txt = _all_gather(text_emb, True, world, rank)  # [W*b, E]; positives at b*rank
        return _sigmoid_loss(image_emb, all_txt, scale, bias, b * rank, b, chunk_size)
    loss = _sigmoid_loss(image_emb, text_emb, scale, bias, 0, b, chunk_size)
    block = text_emb
    for _ in range(world - 1):  # after W-1 passes every rank has seen every other rank's text block once
        block = _RingPass.apply(block, (rank + 1) % world, (rank - 1) % world)
        loss = loss + _sigmoid_loss(image_emb, block, scale, bias, None, b, chunk_size)
    return loss


# ---------------------------------------------------------------------------------------------------- LM


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Next-token cross entropy: position t predicts labels[t+1]; positions labelled `ignore_index` (prompt,
    image tokens, padding) are not counted. Mean over counted tokens; 0 (with gradient) when none are counted.

    logits [B, T, V], labels [B, T] aligned with the input ids (the shift happens here).
    """
    if logits.dim() != 3 or labels.dim() != 2 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"lm_loss: logits must be [B, T, V] and labels [B, T] over the same tokens; got "
            f"{tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    pred = logits[:, :-1].reshape(-1, logits.shape[-1]).float()  # [B*(T-1), V]
    target = labels[:, 1:].reshape(-1)  # [B*(T-1)]
    counted = (target != ignore_index).sum()
    total = F.cross_entropy(pred, target, ignore_index=ignore_index, reduction="sum")
    return total / counted.clamp(min=1)
