"""One optimizer step with exact gradient accumulation, clipping and the learning rate of this step.

A step sees this rank's `grad_accum` micro-batches of the global batch. Each micro-batch's loss is a mean over its
items; it is back-propagated with weight `n_i * world / N` (n_i items in the micro-batch, N in the global batch),
so after DDP's average over ranks the accumulated gradient is that of the mean over the whole global batch (see
distributed.py). Items are examples unless the model's loss dict carries `loss_weight` (e.g. the number of answer
tokens a language-model loss averages over): then the step rescales the gradients by N_examples / N_weight
after the all-reduce, which makes token-mean losses exact too.

Contrastive losses are not sums over examples: with grad_accum > 1 each micro-batch only sees its own negatives, so
accumulation is then the mean of smaller-batch losses, not one big batch (the trainer warns).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .distributed import DistInfo, all_reduce_sum, no_sync
from .optim import set_lr


def autocast(precision: str, device_type: str = "cpu"):
    """The forward context of a precision: bf16 autocast on the model's device type, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    return torch.autocast(device_type, dtype=torch.bfloat16)


def train_step(
    wrapped: nn.Module,
    optimizer: torch.optim.Optimizer,
    micro_batches: list[tuple[dict, int]],
    objective: str,
    global_batch_size: int,
    info: DistInfo,
    lr: float,
    max_grad_norm: float | None,
    precision: str = "fp32",
) -> dict[str, float]:
    """`micro_batches`: (collated batch, number of examples) pairs for this rank. Returns the logged scalars.
    precision "bf16": forward passes under bfloat16 autocast (backward follows the forward's dtypes)."""
    set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    total_weight = 0.0
    device_type = next(wrapped.parameters()).device.type
    for k, (batch, n) in enumerate(micro_batches):
        with no_sync(wrapped, last_micro_step=k == len(micro_batches) - 1):
            with autocast(precision, device_type):
                out = wrapped(batch, objective)
            loss = out["loss"]
            weight = float(out["loss_weight"]) if "loss_weight" in out else float(n)
            (loss * (weight * info.world_size / global_batch_size)).backward()
        total_weight += weight
        for key, value in out.items():
            if key != "loss_weight" and isinstance(value, torch.Tensor) and value.numel() == 1:
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * weight

    # Global sums over ranks: the denominator for token-weighted losses and the logged means.
    keys = sorted(sums)
    reduced = all_reduce_sum(torch.tensor([total_weight] + [sums[k] for k in keys], dtype=torch.float64), info)
    total = float(reduced[0])
    logged = {k: float(v) / total for k, v in zip(keys, reduced[1:])}
    if not math.isfinite(logged.get("loss", math.nan)):
        raise FloatingPointError(
            f"the loss is {logged.get('loss')} (objective {objective!r}): lower the learning rate, enable "
            "max_grad_norm, or check the data of this step"
        )

    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if total != global_batch_size:  # token-weighted losses: from per-example scaling to per-token
        scale = global_batch_size / total
        for p in params:
            p.grad.mul_(scale)
    norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm if max_grad_norm is not None else math.inf)
    logged["grad_norm"] = float(norm)
    optimizer.step()
    logged["lr"] = lr
    return logged
