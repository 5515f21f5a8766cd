"""torchrun script (gloo, CPU): the distributed contrastive losses reproduce the single-process full-batch loss.

Every rank builds the same global batch [B, E] from one seed and keeps its slice. For each distributed variant it
checks (float64, tight tolerance):
  - loss: the mean over ranks equals open_clip's single-process loss on the full batch;
  - features: the gradient on this rank's slice equals `factor` x the full-batch gradient of that slice, where
    factor = world_size whenever gradients flow through the collectives (DDP's gradient *average* over ranks
    divides it out) and 1 for CLIP with gather_with_grad=False (so after DDP's average, 1/world_size);
  - logit scale / bias (replicated scalars): the mean over ranks equals the full-batch gradient, i.e. exactly
    what DDP's average produces.
Run: python -m torch.distributed.run --standalone --nproc_per_node=2 tests/dist_scripts/losses.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from modalign.losses import clip_loss, siglip_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared reference loader
from open_clip_ref import open_clip_loss_module


def reference_module():
    module = open_clip_loss_module()
    if module is None:
        raise SystemExit("open_clip_torch is not installed (make setup installs it with --no-deps)")
    return module


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


def full_batch(ref_fn, img, txt, scalars):
    img, txt, scalars = leaf(img), leaf(txt), [leaf(s) for s in scalars]
    loss = ref_fn(img, txt, *scalars)
    loss.backward()
    return loss.detach(), img.grad, txt.grad, [s.grad for s in scalars]


def check(name, ours_fn, ref_fn, img, txt, scalars, rank, world, feature_factor):
    b = img.shape[0] // world
    rows = slice(rank * b, (rank + 1) * b)
    ref_loss, ref_gi, ref_gt, ref_gs = full_batch(ref_fn, img, txt, scalars)

    li, lt, ls = leaf(img[rows]), leaf(txt[rows]), [leaf(s) for s in scalars]
    loss = ours_fn(li, lt, *ls)
    loss.backward()

    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    mean_loss /= world
    torch.testing.assert_close(mean_loss, ref_loss, rtol=0, atol=1e-10, msg=lambda m: f"{name} loss: {m}")
    torch.testing.assert_close(
        li.grad, feature_factor * ref_gi[rows], rtol=0, atol=1e-10, msg=lambda m: f"{name} image grad: {m}"
    )
    torch.testing.assert_close(
        lt.grad, feature_factor * ref_gt[rows], rtol=0, atol=1e-10, msg=lambda m: f"{name} text grad: {m}"
    )
    for s, ref in zip(ls, ref_gs):
        g = s.grad.clone()
        dist.all_reduce(g)  # what DDP does to a replicated parameter's gradient, before dividing by world
        torch.testing.assert_close(g / world, ref, rtol=0, atol=1e-10, msg=lambda m: f"{name} scalar grad: {m}")
    if rank == 0:
        print(f"ok {name}: loss {mean_loss.item():.6f}", flush=True)


def labelled_reference(labels):
    """Soft-target InfoNCE written out by hand: the target of a row is spread over same-label columns."""

    def loss(img, txt, scale):
        logits = scale * img @ txt.T
        same = (labels[:, None] == labels[None, :]).to(img.dtype)
        target = same / same.sum(1, keepdim=True)
        return (-(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.T.log_softmax(1)).sum(1).mean()) / 2

    return loss


def main():
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank, world = dist.get_rank(), dist.get_world_size()
    ref = reference_module()
    g = torch.Generator().manual_seed(0)
    b_local, e = 5, 8
    img = F.normalize(torch.randn(world * b_local, e, generator=g, dtype=torch.float64), dim=-1)
    txt = F.normalize(torch.randn(world * b_local, e, generator=g, dtype=torch.float64), dim=-1)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    bias = torch.tensor(-10.0, dtype=torch.float64)

    clip_ref, siglip_ref = ref.ClipLoss(), ref.SigLipLoss()
    for local in (False, True):
        check(
            f"clip gather_with_grad local_loss={local}",
            lambda i, t, s, local=local: clip_loss(i, t, s, local_loss=local, gather_with_grad=True),
            clip_ref,
            img,
            txt,
            [scale],
            rank,
            world,
            feature_factor=world,
        )
    check(
        "clip gather without grad",
        lambda i, t, s: clip_loss(i, t, s, gather_with_grad=False),
        clip_ref,
        img,
        txt,
        [scale],
        rank,
        world,
        feature_factor=1,
    )
    labels = torch.arange(world * b_local) % 3  # classes shared across ranks
    b_rows = lambda: slice(rank * b_local, (rank + 1) * b_local)
    for local in (False, True):
        check(
            f"clip with labels local_loss={local}",
            lambda i, t, s, local=local: clip_loss(i, t, s, local_loss=local, labels=labels[b_rows()]),
            labelled_reference(labels),
            img,
            txt,
            [scale],
            rank,
            world,
            feature_factor=world,
        )
    for exchange in ("gather", "ring"):
        for chunk in (None, 2):
            check(
                f"siglip exchange={exchange} chunk_size={chunk}",
                lambda i, t, s, bb, ex=exchange, c=chunk: siglip_loss(i, t, s, bb, chunk_size=c, exchange=ex),
                siglip_ref,
                img,
                txt,
                [torch.tensor(10.0, dtype=torch.float64), bias],
                rank,
                world,
                feature_factor=world,
            )
    dist.barrier()
    if rank == 0:
        print("ALL OK", flush=True)
    sys.stdout.flush()
    # every check has passed on every rank (the barrier): leave without tearing the gloo group down, whose worker
    # threads can abort the process at destruction under load ("terminate called without an active exception",
    # seen once in CI after ALL OK), turning a passed check into a failed run
    os._exit(0)


if __name__ == "__main__":
    main()
