"""Fully sharded data parallelism (PyTorch FSDP2, `fully_shard`) as a training strategy beside DDP.

`strategy: fsdp` in a recipe, under torchrun. For each stage the trainer shards a copy of the model: every trainable
parameter (and its gradient and AdamW state) is split across ranks, while frozen parameters are shared with the
canonical model, unsharded (they need no gradient or optimizer state, and a save can keep naming an unchanged
pretrained part instead of storing it). The canonical, unsharded model is what saves, evaluation and the next stage
see: `sync_back` gathers the trained tensors into it before every save and at the stage's end.

Decoder layers of a language model are sharded one by one (their parameters are gathered only while the layer
runs), then the rest of the model as one unit. Gradients are averaged over ranks as under DDP, so the loss scaling
of step.py holds unchanged, and 2 processes train the same weights as one (tests/test_fsdp_dist.py). Checkpoints
hold full tensors in the same layout as single-process ones (the optimizer state gathered per parameter), so a
resume may even change the number of processes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _dtensor():
    from torch.distributed.tensor import DTensor, distribute_tensor

    return DTensor, distribute_tensor


def _frozen_tensors(model: nn.Module) -> dict[int, torch.Tensor]:
    """Tensors the sharded copy shares with the canonical model: frozen parameters and every buffer."""
    out = {id(p): p for p in model.parameters() if not p.requires_grad}
    out.update({id(b): b for b in model.buffers()})
    return out


def _layer_stacks(model: nn.Module) -> list[nn.Module]:
    """The decoder layers of the model's language model (empty for models without one)."""
    base = model.base_lm() if hasattr(model, "base_lm") else None
    decoder = getattr(getattr(base, "model", None), "layers", None)
    return list(decoder) if decoder is not None else []


def shard_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose trainable parameters are sharded across the process group (frozen ones shared)."""
    from torch.distributed.fsdp import fully_shard

    memo = _frozen_tensors(model)
    shared = dict(memo)
    train_model = copy.deepcopy(model, memo)  # the memo makes the copy reuse frozen tensors instead of copying them
    frozen = {p for p in train_model.parameters() if id(p) in shared}
    for layer in _layer_stacks(train_model):
        if any(p.requires_grad for p in layer.parameters()):
            fully_shard(layer, ignored_params={p for p in layer.parameters() if p in frozen})
    fully_shard(train_model, ignored_params=frozen)
    return train_model


def sharded_count(module: nn.Module) -> int:
    """How many parameters of `module` are sharded (DTensors), for the log."""
    DTensor, _ = _dtensor()
    return sum(isinstance(p, DTensor) for p in module.parameters())


def full(value):
    """A DTensor gathered into a plain tensor on every rank (collective); anything else as it is."""
    DTensor, _ = _dtensor()
    return value.full_tensor() if isinstance(value, DTensor) else value


def sync_back(train_model: nn.Module, model: nn.Module) -> None:
    """Collective: copy the sharded copy's trained tensors (and changed buffers) into the canonical model."""
    canonical = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in train_model.named_parameters():
            if p.requires_grad:
                canonical[name].copy_(full(p))
        mine = dict(model.named_buffers())
        for name, b in train_model.named_buffers():
            if b is not mine[name] and not torch.equal(b, mine[name]):
                mine[name].copy_(b)


def gathered_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """Collective: the optimizer's state dict with every sharded tensor gathered (the single-process layout)."""
    sd = optimizer.state_dict()
    state = {pid: {k: full(v) for k, v in sorted(entry.items())} for pid, entry in sorted(sd["state"].items())}
    return {"state": state, "param_groups": sd["param_groups"]}


def shard_optimizer_state(optimizer: torch.optim.Optimizer, sd: dict) -> dict:
    """A full (single-process layout) optimizer state dict laid out like the optimizer's sharded parameters."""
    DTensor, distribute_tensor = _dtensor()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for pid, entry in sd["state"].items():
        p = params[int(pid)]
        state[pid] = {
            k: distribute_tensor(v, p.device_mesh, p.placements)
            if isinstance(p, DTensor) and isinstance(v, torch.Tensor) and v.shape == p.shape
            else v
            for k, v in entry.items()
        }
    return {"state": state, "param_groups": sd["param_groups"]}
