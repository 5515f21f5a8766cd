"""FSDP2 (strategy: fsdp) under torchrun, 2 processes on CPU: the same weights as one process after every stage, and
a killed run resumed from its checkpoint ends with the weights of the uninterrupted one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_dist import torchrun

HERE = Path(__file__).parent / "dist_scripts"
sys.path.insert(0, str(HERE))
from fsdp_vlm import recipe  # noqa: E402

from modalign.trainer import run_recipe  # noqa: E402


def _torchrun(*args: str) -> None:
    torchrun("fsdp_vlm.py", *args, timeout=600)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@pytest.mark.dist
def test_fsdp_two_processes_equal_one_and_resume_exactly(tmp_path):
    torch.set_num_threads(1)
    _torchrun(str(tmp_path / "fsdp"))
    run_recipe(recipe(), tmp_path / "single", progress=False)  # one process: fsdp has nothing to shard
    for stage in ("stages/align", "stages/instruct", "final"):
        want, got = _weights(tmp_path / "single" / stage), _weights(tmp_path / "fsdp" / stage)
        assert set(want) == set(got)
        for k in want:
            assert torch.allclose(want[k], got[k], atol=1e-5, rtol=0), (stage, k, (want[k] - got[k]).abs().max())
    starts = [json.loads(x) for x in (tmp_path / "fsdp" / "log.jsonl").read_text().splitlines()]
    starts = [r for r in starts if r.get("event") == "stage_start"]
    assert [r["strategy"] for r in starts] == ["fsdp", "fsdp"]
    # align shards only the connector (the LM is frozen, shared unsharded); instruct the connector and the LM
    assert 0 < starts[0]["sharded_parameters"] < starts[1]["sharded_parameters"]
    # the stages trained (the comparison is not between two untouched models)
    align, final = _weights(tmp_path / "fsdp" / "stages/align"), _weights(tmp_path / "fsdp" / "final")
    assert not torch.allclose(align["lm.lm_head.weight"], final["lm.lm_head.weight"])

    # killed after the instruct stage's first checkpoint (global step 4), resumed in a new launch
    _torchrun(str(tmp_path / "killed"), "5")
    assert not (tmp_path / "killed" / "final").exists()
    _torchrun(str(tmp_path / "killed"))
    whole, resumed = _weights(tmp_path / "fsdp" / "final"), _weights(tmp_path / "killed" / "final")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
