"""Atomic, pickle-free training checkpoints: every tensor in safetensors, everything else in JSON.

A checkpoint is a directory `out_dir/checkpoints/step-<global step>/` holding
  model.safetensors        the model's trained tensors (tied weights once; unchanged pretrained parts are named in
                           state.json's `references` and rebuilt, as in a saved model: models/saving.py)
  optimizer.safetensors    the optimizer's per-parameter state, flattened to `<param index>.<key>` tensors
  optimizer.json           the rest of the optimizer state dict (param groups, non-tensor state values)
  rng-rank<r>.safetensors  torch RNG states as uint8 tensors, one file per rank
  rng-rank<r>.json         numpy and python RNG states as JSON lists
  state.json               stage index, steps, sampler position, schedule, recipe, the sha256 of every other
                           file (`files`) and of its own content (`state_sha256`); written last
It is written into a temporary directory, every file and the directory fsynced, then renamed into place (and the
parent fsynced), so a kill or a power cut mid-write leaves no partial checkpoint; only the newest `keep` are kept.
A resume checks the recorded hashes and falls back to an older intact checkpoint (integrity.py).
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..files import fsync_dir, fsync_tree, sha256_file
from ..models.saving import check_references, load_tensors, reference_parts, trained_tensors
from .distributed import DistInfo, barrier

PREFIX = "step-"
STATE = "state.json"


def checkpoint_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "checkpoints"


def latest_checkpoint(out_dir: Path) -> Path | None:
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").exists()]
    return max(done, key=lambda p: int(p.name[len(PREFIX) :]), default=None)


# ---- optimizer state <-> (tensors, JSON) -------------------------------------------------------------------------


def flatten_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for pid, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    meta = {"param_groups": state_dict["param_groups"], "scalars": scalars, "tensor_keys": sorted(tensors)}
    return tensors, meta


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name in meta["tensor_keys"]:
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = tensors[name]
    for pid, entry in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    # JSON turns tuples (AdamW's betas) into lists; give hyperparameters back their tuple form.
    groups = [
        {k: tuple(v) if isinstance(v, list) and k not in ("params", "names") else v for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


# ---- RNG states ---------------------------------------------------------------------------------------------------


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}  # uint8 tensor
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    meta = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


# ---- save / load --------------------------------------------------------------------------------------------------


def tmp_path(out_dir: Path, global_step: int) -> Path:
    return checkpoint_dir(out_dir) / f".tmp-{PREFIX}{global_step:08d}"


def write_rng(directory: Path, rank: int) -> None:
    """Every rank writes its own RNG state into the (shared) temporary directory."""
    tensors, meta = rng_state()
    save_file(tensors, str(directory / f"rng-rank{rank}.safetensors"))
    (directory / f"rng-rank{rank}.json").write_text(json.dumps(meta))


def write_main(directory: Path, model: torch.nn.Module, optimizer_state: dict, state: dict) -> None:
    """Rank 0's part: weights, optimizer, and `state.json` last (its presence marks the checkpoint complete)."""
    refs = reference_parts(model)
    save_file(trained_tensors(model, refs), str(directory / "model.safetensors"))
    tensors, meta = flatten_optimizer(optimizer_state)
    save_file(tensors, str(directory / "optimizer.safetensors"))
    (directory / "optimizer.json").write_text(json.dumps(meta))
    # every rank's RNG files are in place (the caller's barrier): hash them all, so a resume detects any change
    files = {p.name: sha256_file(p, fresh=True) for p in sorted(directory.iterdir()) if p.name != STATE}
    state = {**state, "references": refs, "files": files}
    state["state_sha256"] = state_digest(state)  # state.json's own content (sampler position, steps ...) too
    (directory / STATE).write_text(json.dumps(state, indent=1))


def state_digest(state: dict) -> str:
    """sha256 of a state dict's canonical JSON, without its own digest."""
    rest = json.loads(json.dumps({k: v for k, v in state.items() if k != "state_sha256"}))  # as read back
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def publish(out_dir: Path, global_step: int, keep: int) -> Path:
    """Rename the finished temporary directory into place and drop all but the newest `keep` checkpoints."""
    tmp = tmp_path(out_dir, global_step)
    final = checkpoint_dir(out_dir) / f"{PREFIX}{global_step:08d}"
    fsync_tree(tmp)  # the bytes are on disk before the name says the checkpoint is complete
    if final.exists():  # a rerun of the same step after resume: replace it whole
        shutil.rmtree(final)
    tmp.rename(final)  # atomic on one filesystem
    fsync_dir(checkpoint_dir(out_dir))
    done = sorted(
        (p for p in checkpoint_dir(out_dir).iterdir() if p.name.startswith(PREFIX)),
        key=lambda p: int(p.name[len(PREFIX) :]),
    )
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_checkpoint(
    out_dir: Path, model: torch.nn.Module, optimizer_state: dict, state: dict, info: DistInfo, keep: int
) -> None:
    """Collective: every rank adds its RNG state, rank 0 the rest (the model's trained tensors and the optimizer's
    state dict, gathered whole under FSDP), then rank 0 publishes the directory."""
    tmp = tmp_path(out_dir, state["global_step"])
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)  # debris of a run killed mid-write
        tmp.mkdir(parents=True)
    barrier(info)
    write_rng(tmp, info.rank)
    barrier(info)
    if info.is_main:
        write_main(tmp, model, optimizer_state, {**state, "world_size": info.world_size})
        publish(out_dir, state["global_step"], keep)
    barrier(info)


def read_state(directory: Path) -> dict:
    return json.loads((directory / STATE).read_text())


def load_weights(directory: Path, model: torch.nn.Module, state: dict | None = None) -> None:
    """The checkpoint's tensors into a freshly built model (its unchanged pretrained parts were not stored)."""
    refs = (state or read_state(directory)).get("references", {})
    check_references(model, refs, directory)
    load_tensors(model, load_file(str(directory / "model.safetensors")), refs, f"checkpoint {directory}")


def load_optimizer(directory: Path, optimizer: torch.optim.Optimizer, layout=None) -> None:
    """The checkpoint's optimizer state into `optimizer`; `layout(optimizer, state_dict)` lays the whole tensors out
    like sharded parameters (FSDP)."""
    meta = json.loads((directory / "optimizer.json").read_text())
    names_now = [g.get("names") for g in optimizer.param_groups]
    names_then = [g.get("names") for g in meta["param_groups"]]
    if names_now != names_then:
        raise ValueError(f"checkpoint {directory}: the trainable parameters differ from this run's freeze plan")
    sd = unflatten_optimizer(load_file(str(directory / "optimizer.safetensors")), meta)
    optimizer.load_state_dict(layout(optimizer, sd) if layout is not None else sd)


def load_rng(directory: Path, rank: int, saved_world_size: int) -> None:
    path = directory / f"rng-rank{rank}.safetensors"
    if rank >= saved_world_size:  # resumed with more ranks than wrote the checkpoint: reseed deterministically
        torch.manual_seed(rank)
        return
    if not path.exists():  # written by this rank, so its absence is damage, never a reason to reseed
        raise FileNotFoundError(f"checkpoint {directory}: {path.name} is missing")
    set_rng_state(load_file(str(path)), json.loads((directory / f"rng-rank{rank}.json").read_text()))
