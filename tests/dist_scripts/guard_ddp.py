"""Launched by tests/test_guard_dist.py under torchrun: the ranks agree on a step's finite-check even when only one
rank sees the problem, and a DDP run with poisoned records skips the same steps as one process does.

usage: python -m torch.distributed.run --nproc_per_node=2 guard_ddp.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from guard_toys import PoisonToy, builder, poison_recipe
from train_toys import DATASETS

from modalign.trainer import run_recipe
from modalign.trainer.distributed import DistInfo, all_ranks_true

if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    info = DistInfo(rank, 2)
    verdicts = [all_ranks_true(rank != 1, info), all_ranks_true(rank != 0, info), all_ranks_true(True, info)]
    out_dir = Path(sys.argv[1])
    summary = run_recipe(
        poison_recipe(), out_dir / "ddp", progress=False, model_builder=builder(PoisonToy), datasets=DATASETS
    )
    (out_dir / f"rank{rank}.json").write_text(
        json.dumps({"verdicts": verdicts, "bad_steps": summary["stages"][0]["bad_steps"]})
    )
    torch.distributed.destroy_process_group()
