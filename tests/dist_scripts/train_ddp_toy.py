"""Launched by tests/test_train_dist.py under torchrun: train the toy model with run_recipe on every rank, for
each objective x grad_accum pair, into OUT_DIR/<objective>-<grad_accum> (one launch: torchrun start-up is slow).

usage: python -m torch.distributed.run --nproc_per_node=2 train_ddp_toy.py OUT_DIR OBJECTIVE[,OBJECTIVE] ACCUM[,ACCUM]
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_toys import DATASETS, ddp_recipe, toy_builder

from modalign.trainer import run_recipe

if __name__ == "__main__":
    torch.set_num_threads(1)
    # One process group for all runs (run_recipe joins an existing group and leaves it up): re-creating a group
    # in the same torchrun process would reuse the rendezvous store's keys.
    torch.distributed.init_process_group("gloo")
    out_dir = Path(sys.argv[1])
    for objective in sys.argv[2].split(","):
        for accum in map(int, sys.argv[3].split(",")):
            summary = run_recipe(
                ddp_recipe(accum, objective),
                out_dir / f"{objective}-{accum}",
                progress=False,
                model_builder=toy_builder(dropout=0.0),
                datasets=DATASETS,
            )
            assert summary["world_size"] == 2, summary
    torch.distributed.destroy_process_group()
