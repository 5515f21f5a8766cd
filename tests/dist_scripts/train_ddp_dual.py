"""Launched by tests/test_train_dual.py under torchrun: train the toy-size DualEncoder recipe for each loss into
OUT_DIR/<loss>.

usage: python -m torch.distributed.run --nproc_per_node=2 train_ddp_dual.py OUT_DIR LOSS[,LOSS]
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from train_toys import DDP_LR, dual_recipe

from modalign.trainer import run_recipe

if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")  # one group for all runs (see train_ddp_toy.py)
    out_dir = Path(sys.argv[1])
    for loss in sys.argv[2].split(","):
        summary = run_recipe(dual_recipe(loss, lr=DDP_LR), out_dir / loss, progress=False)
        assert summary["world_size"] == 2, summary
    torch.distributed.destroy_process_group()
