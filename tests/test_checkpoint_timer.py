"""Time-based checkpoints (`checkpoint_minutes`): saved when the stage's clock says so, resumable exactly, and a
resume may change when to log and save (but not what trains)."""

import itertools
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from train_toys import DATASETS, final_state, toy_builder, toy_recipe

from modalign.registry import ConfigError
from modalign.trainer import run_recipe, runner

STAGES = [
    {
        "name": "a",
        "train": ["vision", "head"],
        "steps": 5,
        "weight_decay": 0.1,
        "warmup_steps": 2,
        "data": {"name": "toy", "n": 10},
    },
    {"name": "b", "train": ["head"], "steps": 4, "objective": "instruct", "data": {"name": "toy", "n": 6, "seed": 1}},
]


@pytest.fixture(autouse=True)
def minute_clock(monkeypatch):
    """Every reading of the runner's clock is one minute after the previous one."""
    minutes = itertools.count(1)
    monkeypatch.setattr(runner, "_clock", lambda: 60.0 * next(minutes))


def run(out, minutes, log_every=1, **kw):
    stages = [{**s, "checkpoint_minutes": minutes, "log_every": log_every} for s in STAGES]
    return run_recipe(
        toy_recipe(stages),
        out,
        progress=False,
        model_builder=toy_builder(dropout=0.2),
        datasets=DATASETS,
        keep_checkpoints=10,
        **kw,
    )


def saved_at(out_dir) -> list[int]:
    rows = [json.loads(x) for x in (Path(out_dir) / "log.jsonl").read_text().splitlines()]
    return [r["global_step"] for r in rows if r.get("event") == "checkpoint"]


def test_saves_when_the_minutes_have_passed(tmp_path):
    # clock readings (minutes): stage a starts at 1; steps 1-3 read 2, 3, 4 -> 3 minutes >= 2.5 at step 3, save, reset
    # to 5; step 4 reads 6; step 5 ends the stage (saved anyway, reset to 7). Stage b starts at 8, its step 3 reads 11.
    run(tmp_path / "timed", 2.5)
    assert saved_at(tmp_path / "timed") == [3, 5, 8, 9]
    run(tmp_path / "off", 0)
    assert saved_at(tmp_path / "off") == [5, 9]


def test_the_clock_is_read_at_logging_steps_only(tmp_path):
    # log_every 2: readings at stage a's start (1), steps 2 (2) and 4 (3); 2 minutes have passed at step 4
    run(tmp_path, 2, log_every=2)
    assert saved_at(tmp_path)[:2] == [4, 5]


def test_resume_from_a_timed_checkpoint_is_exact_and_may_change_the_cadence(tmp_path):
    run(tmp_path / "ref", 0)
    assert run(tmp_path / "cut", 2.5, stop_after_steps=7)["stopped"]
    out = run(tmp_path / "cut", 0, log_every=3, resume=True)  # bookkeeping changed: still the same training
    assert out["resumed_from"].endswith("step-00000005")
    want, got = final_state(tmp_path / "ref"), final_state(tmp_path / "cut")
    for k in want:
        assert torch.equal(want[k], got[k]), k


def test_resume_still_refuses_a_changed_training_setting(tmp_path):
    run(tmp_path, 2.5, stop_after_steps=4)
    changed = toy_recipe([{**STAGES[0], "batch_size": 2, "checkpoint_minutes": 2.5}, STAGES[1]])
    with pytest.raises(ConfigError, match="different recipe"):
        run_recipe(
            changed, tmp_path, resume=True, progress=False, model_builder=toy_builder(dropout=0.2), datasets=DATASETS
        )
