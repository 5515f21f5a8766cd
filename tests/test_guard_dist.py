"""Under DDP every rank reaches the same verdict on a step (one all-reduced flag), so all skip or all step."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from guard_toys import PoisonToy, builder, poison_recipe
from test_train_dist import torchrun
from train_toys import DATASETS, final_state

from modalign.trainer import run_recipe


@pytest.mark.dist
def test_ranks_agree_and_skip_the_steps_one_process_skips(tmp_path):
    torchrun("guard_ddp.py", str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["verdicts"] for r in ranks] == [[False, False, True]] * 2
    single = run_recipe(
        poison_recipe(), tmp_path / "single", progress=False, model_builder=builder(PoisonToy), datasets=DATASETS
    )
    n_bad = single["stages"][0]["bad_steps"]
    assert 0 < n_bad < 8 and [r["bad_steps"] for r in ranks] == [n_bad, n_bad]
    want, got = final_state(tmp_path / "single"), final_state(tmp_path / "ddp")
    for k in want:
        assert torch.allclose(want[k], got[k], atol=1e-5, rtol=0), k
