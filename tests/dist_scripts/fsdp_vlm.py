"""A tiny vision-language model and recipe for the FSDP tests (tests/test_fsdp_dist.py), and the torchrun entry.

The recipe has two stages, so the sharded copy is made twice: `align` trains the connector under a frozen LM,
`instruct` the connector and the whole LM (its decoder layers sharded one by one), with gradient accumulation,
clipping, weight decay and token-weighted losses.

usage: python -m torch.distributed.run --nproc_per_node=2 fsdp_vlm.py OUT_DIR [STOP_AFTER_STEPS]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
from test_vlm_tiny_parts import tiny_cfg

from modalign.config import validate_recipe
from modalign.trainer import run_recipe

DATA = {"name": "shapes", "task": "instruct", "n": 16, "image_size": 32, "max_turns": 2}


def recipe(strategy: str = "fsdp"):
    common = {"batch_size": 8, "lr": 0.01, "log_every": 1, "checkpoint_every": 2, "checkpoint_minutes": 0}
    stages = [
        {
            "name": "align",
            "objective": "caption",
            "steps": 2,
            "train": ["connector"],
            **common,
            "data": {"name": "shapes", "task": "caption", "n": 16, "image_size": 32},
        },
        {
            "name": "instruct",
            "objective": "instruct",
            "steps": 4,
            "grad_accum": 2,
            "weight_decay": 0.1,
            "max_grad_norm": 0.5,
            "train": ["connector", "lm"],
            **common,
            "data": DATA,
        },
    ]
    return validate_recipe(
        {"name": "fsdp-vlm", "seed": 0, "strategy": strategy, "model": tiny_cfg("mlp").model_dump(), "stages": stages}
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    stop = int(sys.argv[2]) if len(sys.argv) > 2 else None
    summary = run_recipe(recipe(), out, resume=True, progress=False, stop_after_steps=stop)
    assert summary["world_size"] == 2, summary
