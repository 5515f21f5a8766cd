"""Non-finite training never becomes weights: bad steps are skipped and counted, a run that keeps failing stops.

`train_step` checks the loss and the gradient norm of every step before the optimizer sees it; all ranks agree on
the verdict (`distributed.all_ranks_true`, one all-reduce), so under DDP — and under a sharded strategy where each
rank sees only its shard's part of the norm — every rank skips or steps together. A skipped step zeroes the
gradients and leaves weights and optimizer state untouched. `BadSteps` counts them; after the stage's
`max_bad_steps` in a row it raises `TrainingDiverged` naming stage, step and the likely causes. While a run of bad
steps lasts no periodic checkpoint is written (the step before it may be the one that blew the weights up), so the
newest checkpoint is one a resume with a lower learning rate can recover from. Before any checkpoint or saved model
is written `check_finite` scans the tensors, so nothing non-finite ever reaches disk.
"""

from __future__ import annotations

import math

import torch


class TrainingDiverged(RuntimeError):
    """Training produced non-finite values it could not step past; the message says where and what to change."""


_CAUSES = (
    "Likely causes: the learning rate is too high (lower `lr`, add `warmup_steps` or a `max_grad_norm`; a --resume "
    "may change lr, schedule, warmup_steps and max_grad_norm), half precision overflowing (train in float32), or "
    "bad values in the data of these batches"
)


def _fmt(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


class BadSteps:
    """Skipped steps of one stage: the total, and how many in a row (both saved in checkpoints for exact resume)."""

    def __init__(self, limit: int, total: int = 0, in_a_row: int = 0):
        self.limit, self.total, self.in_a_row = limit, total, in_a_row

    def state_dict(self) -> dict:
        return {"total": self.total, "in_a_row": self.in_a_row}

    def record(self, logged: dict, *, stage: str, step: int, global_step: int, ids: list, resume_hint: str) -> bool:
        """Count one finished step (`logged` from train_step); True if it was skipped. Raises TrainingDiverged at
        the limit."""
        if not logged.get("skipped"):
            self.in_a_row = 0
            return False
        self.total += 1
        self.in_a_row += 1
        if self.in_a_row >= self.limit:
            shown = ", ".join(str(i) for i in ids[:8]) + (" ..." if len(ids) > 8 else "")
            raise TrainingDiverged(
                f"stage {stage!r}, step {step} (global step {global_step}): {self.in_a_row} steps in a row had a "
                f"non-finite loss or gradient norm (last: loss {_fmt(logged['loss'])}, gradient norm "
                f"{_fmt(logged['grad_norm'])}, lr {logged['lr']:.3g}; last batch ids: {shown}), so training stopped "
                f"with nothing non-finite saved ({self.total} skipped in this stage). {_CAUSES}. {resume_hint}"
            )
        return True


def check_finite(tensors: dict[str, torch.Tensor], what: str) -> None:
    """Refuse to save `what` if any floating tensor holds NaN or inf (names the first such tensor)."""
    for name, t in tensors.items():
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise TrainingDiverged(
                f"refusing to write {what}: tensor {name!r} holds {bad} non-finite value(s) of {t.numel()}; "
                f"nothing was saved. {_CAUSES}"
            )


def optimizer_tensors(optimizer) -> dict[str, torch.Tensor]:
    """The tensors of an optimizer (or of its state dict), named `<param index>.<key>`."""
    sd = optimizer.state_dict() if hasattr(optimizer, "state_dict") else optimizer
    return {f"{pid}.{k}": v for pid, st in sd["state"].items() for k, v in st.items()}
