"""One optimizer step with exact gradient accumulation, clipping and the learning rate of this step.

A step sees this rank's `grad_accum` micro-batches of the global batch. Each micro-batch's loss is a mean over its
items; it is back-propagated with weight `n_i * world / N` (n_i items in the micro-batch, N in the global batch),
so after DDP's average over ranks the accumulated gradient is that of the mean over the whole global batch (see
distributed.py). Items are examples unless the model's loss dict carries `loss_weight` (e.g. the number of answer
tokens a language-model loss averages over): then the step rescales the gradients by N_examples / N_weight
after the all-reduce, which makes token-mean losses exact too.

Before the optimizer step the loss and the gradient norm (taken before clipping) must be finite on every rank
(`all_ranks_true`): otherwise the step is skipped — gradients zeroed, no optimizer step — and `logged["skipped"]`
is 1; the trainer counts skipped steps and stops a stage that keeps failing (guard.py).

Contrastive losses are not sums over examples: with grad_accum > 1 each micro-batch only sees its own negatives, so
accumulation is then the mean of smaller-batch losses, not one big batch (the trainer warns).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .distributed import DistInfo, all_ranks_true, all_reduce_sum, no_sync
from .optim import set_lr


def native_bf16() -> bool:
    """Whether this machine computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or
    AMX. Elsewhere bf16 matmuls are emulated, far slower than fp32."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(precision: str) -> str:
    """ "auto" -> "bf16" where native_bf16(), else "fp32"; "fp32" and "bf16" as given."""
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def autocast(precision: str):
    """The forward context of a stage's precision: bfloat16 autocast for "bf16" (and "auto" where bf16 is native),
    nothing for "fp32"."""
    if resolve_precision(precision) == "bf16":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
    for k, (batch, n) in enumerate(micro_batches):
        with no_sync(wrapped, last_micro_step=k == len(micro_batches) - 1):
            with autocast(precision):
                out = wrapped(batch, objective)
            loss = out["loss"].float()
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
    logged["lr"] = lr

    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if total != global_batch_size:  # token-weighted losses: from per-example scaling to per-token
        scale = global_batch_size / total
        for p in params:
            p.grad.mul_(scale)
    norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else torch.tensor(0.0)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm  # FSDP: the norm over every rank's shards
    logged["grad_norm"] = float(norm)
    finite = math.isfinite(logged.get("loss", math.nan)) and math.isfinite(logged["grad_norm"])
    if not all_ranks_true(finite, info):
        optimizer.zero_grad(set_to_none=True)
        logged["skipped"] = 1.0
        return logged
    if max_grad_norm is not None:
        torch.nn.utils.clip_grads_with_norm_(params, max_grad_norm, norm)
    optimizer.step()
    logged["skipped"] = 0.0
    return logged
