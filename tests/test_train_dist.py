"""2-process DDP (torchrun, gloo on CPU) equals one process on the same global batch, with and without
gradient accumulation, for example-mean and token-weighted losses; a trainable component that gets no gradient
switches DDP's find_unused_parameters on (probed) instead of crashing."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent / "dist_scripts"
sys.path.insert(0, str(HERE))
from train_toys import DATASETS, ToyModel, ddp_recipe, final_state, log_series, toy_builder  # noqa: E402

from modalign.trainer import run_recipe  # noqa: E402
from modalign.trainer.runner import _seed_all  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(script: str, *args: str, timeout: float = 240) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--nnodes=1",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        str(HERE / script),
        *args,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    text = proc.stdout + proc.stderr
    first_error = text[text.find("Traceback") :][:4000] if "Traceback" in text else text[-4000:]
    assert proc.returncode == 0, first_error


@pytest.mark.dist
def test_two_processes_equal_one(tmp_path):
    torchrun("train_ddp_toy.py", str(tmp_path), "caption,instruct", "1,2")
    for objective in ("caption", "instruct"):
        single = tmp_path / f"single-{objective}"
        run_recipe(
            ddp_recipe(1, objective), single, progress=False, model_builder=toy_builder(dropout=0.0), datasets=DATASETS
        )
        want = final_state(single)
        for accum in (1, 2):
            got = final_state(tmp_path / f"{objective}-{accum}")
            for k in want:
                err = (want[k] - got[k]).abs().max()
                assert torch.allclose(want[k], got[k], atol=1e-5, rtol=0), (objective, accum, k, err)
            # Adam is blind to a constant gradient scale: the logged global loss and gradient norm check the scaling
            for key in ("loss", "grad_norm"):
                a, b = log_series(single, key), log_series(tmp_path / f"{objective}-{accum}", key)
                assert len(a) == 5 and all(abs(x - y) <= 1e-5 * max(1.0, abs(x)) for x, y in zip(a, b)), (key, a, b)
        log = [json.loads(x) for x in (tmp_path / f"{objective}-2" / "log.jsonl").read_text().splitlines()]
        starts = [r for r in log if r.get("event") == "stage_start"]
        assert [s["find_unused_parameters"] for s in starts] == [False, True]
    # the runs trained what the plan says (the comparison is not between two untouched models)
    _seed_all(0)
    init = ToyModel(dropout=0.0).state_dict()
    assert not torch.allclose(init["vision.0.weight"], want["vision.0.weight"], atol=1e-3)
    assert torch.equal(init["lm.proj.weight"], want["lm.proj.weight"])
