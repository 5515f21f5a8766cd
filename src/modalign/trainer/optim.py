"""AdamW with decoupled weight decay on matrices only, and learning-rate schedules as pure functions of the step.

Biases, norm gains and other vectors/scalars (logit scale, gates) are not decayed: shrinking them toward zero changes
what the layer computes rather than regularising it. The schedule is a function of the optimizer step, not a stateful
scheduler object, so a resumed run needs only the step to recover the learning rate exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import ConfigError


def _is_norm(module: nn.Module) -> bool:
    # Matches LayerNorm, BatchNorm*, GroupNorm and the RMSNorm classes HF models define (LlamaRMSNorm, ...).
    return (
        isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm))
        or "Norm" in type(module).__name__
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters split into a decayed group and a non-decayed one (names kept for checkpoint checks)."""
    no_decay_ids = set()
    for module in model.modules():
        if _is_norm(module):
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    seen = set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if p.ndim < 2 or id(p) in no_decay_ids or name.endswith(".bias"):
            no_decay.append((name, p))
        else:
            decay.append((name, p))
    groups = []
    for items, wd in ((decay, weight_decay), (no_decay, 0.0)):
        if items:
            groups.append({"params": [p for _, p in items], "names": [n for n, _ in items], "weight_decay": wd})
    return groups


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    groups = param_groups(model, weight_decay)
    if not groups:
        raise ConfigError("the freeze plan leaves no trainable parameter: list at least one component in `train:`")
    # `names` is carried in the group for checkpoint validation; torch keeps unknown group keys as-is.
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def lr_at(step: int, base_lr: float, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Learning rate for optimizer step `step` (0-based).

    Warmup ramps linearly to `base_lr` over `warmup_steps` steps, reaching it at the last warmup step (so the
    first step is not wasted at lr 0); then `cosine` / `linear` decay to 0 at `total_steps`, or `constant`.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "constant":
        return base_lr
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    if schedule == "cosine":
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return base_lr * (1.0 - progress)
    raise ConfigError(f"unknown schedule {schedule!r}; choose cosine, linear or constant")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
