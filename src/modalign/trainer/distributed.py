"""Data parallelism under `torchrun`: process-group setup from env vars, DDP wrapping, and the few collectives the
loop needs. A single process (no WORLD_SIZE, or WORLD_SIZE=1) runs the same code with every collective a no-op.

Gradient scaling, stated once: the loop back-propagates, on every rank, the sum over its micro-batches of
`loss_i * n_i * world / N` (n_i items in micro-batch i, N items in the global batch) and DDP *averages* gradients
over ranks, so the result is sum_i n_i * grad(loss_i) / N over all ranks and micro-batches = the gradient of the
global-batch mean loss. Contrastive losses (`modalign.losses`) all-gather features *with gradient*: the backward of
the gather sums the gradient every rank's loss sends to this rank's features; each rank's loss is either the whole
global loss or its rows' share of it, and in both cases summing over ranks and then DDP's 1/world average gives
exactly the gradient of the global-batch loss (the open_clip `gather_with_grad` argument).
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # this run created the process group, so it tears it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def init_distributed() -> DistInfo:
    """Join the process group torchrun describes in RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(dist.get_rank(), dist.get_world_size(), owns_group=True)


def shutdown(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.active:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.active:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def all_ranks_true(ok: bool, info: DistInfo) -> bool:
    """True only if `ok` holds on every rank: the agreement a step's finite-check needs, one all-reduce of a flag.
    A sharded strategy (FSDP) would call it the same way after reducing its shards' norms."""
    flag = all_reduce_sum(torch.tensor([0.0 if ok else 1.0]), info)
    return bool(flag.item() == 0)


def broadcast_object(obj, info: DistInfo):
    if not info.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def has_unused_trainable(model: nn.Module, batch: dict, objective: str, info: DistInfo) -> bool:
    """Whether some trainable parameter gets no gradient from this objective (DDP then needs find_unused_parameters).

    Probed with one forward/backward on a micro-batch; RNG and buffers (batch-norm statistics) are restored
    afterwards so the probe leaves no trace on the run. The answer is OR-ed over ranks so every rank wraps alike.
    """
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    with torch.random.fork_rng(devices=[]):
        out = model(batch, objective)
        out["loss"].backward()
    unused = any(p.requires_grad and p.grad is None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(buffers[n])
    flag = all_reduce_sum(torch.tensor([float(unused)]), info)
    return bool(flag.item() > 0)


def wrap(model: nn.Module, info: DistInfo, find_unused: bool) -> nn.Module:
    if not info.active:
        return model
    return DistributedDataParallel(model, find_unused_parameters=find_unused)


@contextmanager
def _fsdp_accumulate(module):
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def no_sync(wrapped: nn.Module, last_micro_step: bool):
    """Skip the gradient reduction on every micro-step but the last: one reduction per optimizer step (DDP's
    no_sync, FSDP2's requires_gradient_sync)."""
    if last_micro_step:
        return nullcontext()
    if isinstance(wrapped, DistributedDataParallel):
        return wrapped.no_sync()
    if hasattr(wrapped, "set_requires_gradient_sync"):  # an FSDP2 module
        return _fsdp_accumulate(wrapped)
    return nullcontext()
