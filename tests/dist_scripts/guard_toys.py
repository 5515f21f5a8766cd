"""Toy models that go non-finite on cue, for the non-finite guard's tests (tests/test_guard.py and the torchrun
script guard_ddp.py).

- `BlowUpToy`: the loss turns NaN once any head weight exceeds `limit` in magnitude — what a too-high learning rate
  does to a real model a few steps after the damage. Below the limit the extra term adds exactly 0 to the loss and
  to every gradient, so the toy trains bit for bit as `ToyModel` does.
- `PoisonToy`: a batch holding one of the `poison` ids gets a NaN gradient while its loss stays finite (the
  derivative of sqrt at 0) — the case a loss-only check misses.
- `NaNBufferToy`: a buffer turns NaN at a given call without any gradient involved, so only the check before
  saving can catch it.
"""

from __future__ import annotations

import torch
from train_toys import ToyModel, toy_recipe


class BlowUpToy(ToyModel):
    def __init__(self, limit: float = 10.0, dropout: float = 0.0):
        super().__init__(dropout=dropout)
        self.limit = limit

    def training_loss(self, batch, objective):
        out = super().training_loss(batch, objective)
        margin = self.limit - self.head[1].weight.abs().max()
        out["loss"] = out["loss"] + 0.0 * torch.sqrt(margin)  # sqrt of a negative margin: NaN
        return out


class PoisonToy(ToyModel):
    def __init__(self, poison: tuple[str, ...] = ("toy-3",), dropout: float = 0.0):
        super().__init__(dropout=dropout)
        self.poison = set(poison)

    def training_loss(self, batch, objective):
        out = super().training_loss(batch, objective)
        if self.poison & set(batch["ids"]):
            out["loss"] = out["loss"] + torch.sqrt(0.0 * self.head[1].weight.sum())  # value 0, gradient NaN
        return out


class NaNBufferToy(ToyModel):
    def __init__(self, at_call: int = 3):
        super().__init__(dropout=0.0)
        self.register_buffer("running", torch.zeros(2))
        self.at_call, self.calls = at_call, 0

    def training_loss(self, batch, objective):
        self.calls += 1
        if self.calls == self.at_call:
            self.running.fill_(float("nan"))
        return super().training_loss(batch, objective)


def builder(cls, **kw):
    return lambda cfg, text_corpus=None: cls(**kw)


def poison_recipe():
    """8 steps over 10 records, batch 4: some batches hold toy-3 (skipped), most do not."""
    stage = {"name": "a", "train": ["vision", "head"], "batch_size": 4, "steps": 8, "max_bad_steps": 8}
    return toy_recipe([{**stage, "data": {"name": "toy", "n": 10}}])
