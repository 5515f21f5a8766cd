"""Launched by tests/test_kill_resume_slow.py: a two-stage toy run that a test kills with SIGKILL again and again.

Prints `train-begin` once training starts, `ckpt-begin <step>` / `ckpt-end <step>` around every checkpoint write
(each tensor file is written slowly, so a kill can land inside one) and `done` at the end.

usage: python kill_target.py OUT_DIR [--resume]; `train(out_dir)` is the same run in-process (the reference)
"""

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_toys import ToyPairs, toy_builder, toy_recipe

from modalign.trainer import checkpoint as ckpt
from modalign.trainer import run_recipe

STAGES = [
    {"name": "a", "train": ["vision", "head"], "steps": 60, "checkpoint_every": 5, "weight_decay": 0.1,
     "warmup_steps": 3, "data": {"name": "slow", "n": 10}},
    {"name": "b", "train": ["lm.lora", "head"], "lora": {"r": 2}, "steps": 40, "checkpoint_every": 4,
     "objective": "instruct", "grad_accum": 2, "schedule": "linear", "data": {"name": "slow", "n": 6, "seed": 1}},
]  # fmt: skip


class SlowPairs(ToyPairs):
    """Each record takes a few ms, so that kills land between steps as well as inside them."""

    def __getitem__(self, i):
        time.sleep(0.002)
        return super().__getitem__(i)


def slow(write):
    def wrapped(tensors, path, *a, **kw):
        time.sleep(0.01)
        write(tensors, path, *a, **kw)
        time.sleep(0.01)  # the file exists, its checkpoint is not complete yet

    return wrapped


def announced(save):
    def wrapped(out_dir, model, optimizer, state, info, keep):
        print(f"ckpt-begin {state['global_step']}", flush=True)
        save(out_dir, model, optimizer, state, info, keep)
        print(f"ckpt-end {state['global_step']}", flush=True)

    return wrapped


def train(out_dir, resume: bool = False) -> dict:
    return run_recipe(
        toy_recipe(STAGES),
        out_dir,
        resume=resume,
        progress=False,
        model_builder=toy_builder(dropout=0.2),
        datasets={"slow": SlowPairs},
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    ckpt.save_file = slow(ckpt.save_file)
    ckpt.save_checkpoint = announced(ckpt.save_checkpoint)
    print("train-begin", flush=True)
    train(sys.argv[1], resume="--resume" in sys.argv)
    print("done", flush=True)
