"""Kill-and-resume gives the same weights as an uninterrupted run: mid-epoch, across a stage boundary, into a LoRA
stage, with dropout (RNG state), weight decay, warmup and the feature cache all in play."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from train_toys import DATASETS, final_state, toy_builder, toy_recipe

from modalign.registry import ConfigError
from modalign.trainer import checkpoint as ckpt
from modalign.trainer import run_recipe

STAGES = [
    # 10 samples, batch 4: checkpoints at global steps 2 and 4 fall mid-epoch
    {
        "name": "a",
        "train": ["vision", "head"],
        "steps": 5,
        "checkpoint_every": 2,
        "weight_decay": 0.1,
        "warmup_steps": 2,
        "data": {"name": "toy", "n": 10},
    },
    {
        "name": "b",
        "train": ["lm.lora", "head"],
        "lora": {"r": 2},
        "steps": 4,
        "checkpoint_every": 3,
        "objective": "instruct",
        "grad_accum": 2,
        "schedule": "linear",
        "data": {"name": "toy", "n": 6, "seed": 1},
    },
]


def run(out, **kw):
    return run_recipe(
        toy_recipe(STAGES), out, progress=False, model_builder=toy_builder(dropout=0.2), datasets=DATASETS, **kw
    )


def losses(out_dir):
    rows = [json.loads(x) for x in (Path(out_dir) / "log.jsonl").read_text().splitlines()]
    return [(r["global_step"], r["loss"]) for r in rows if "loss" in r and "event" not in r]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    run(out)
    return out


@pytest.mark.parametrize(
    "kills", [[3], [7], [8], [3, 7, 8]], ids=["mid-epoch", "stage-boundary", "lora-stage", "three-kills"]
)
def test_kill_and_resume_equals_uninterrupted(tmp_path, reference, kills):
    first = run(tmp_path, stop_after_steps=kills[0])
    assert first["stopped"] and first["global_step"] == kills[0]
    for stop in kills[1:]:
        assert run(tmp_path, resume=True, stop_after_steps=stop)["resumed_from"] is not None
    out = run(tmp_path, resume=True)
    assert out["global_step"] == 9 and out["resumed_from"].endswith(
        {3: "step-00000002", 7: "step-00000005", 8: "step-00000008"}[kills[-1]]
    )
    want, got = final_state(reference), final_state(tmp_path)
    assert want.keys() == got.keys()
    for k in want:
        assert torch.equal(want[k], got[k]), k
    # the log is cut back to the checkpoint and re-written: one record per step, same losses
    assert losses(tmp_path) == losses(reference)


def test_resume_refuses_a_changed_recipe_and_ignores_half_written_checkpoints(tmp_path):
    run(tmp_path, stop_after_steps=3)
    (ckpt.checkpoint_dir(tmp_path) / ".tmp-step-00000004").mkdir()  # a kill during a checkpoint write
    assert ckpt.latest_checkpoint(tmp_path).name == "step-00000002"
    # lr, schedule, warmup and clipping may change (a diverged run is rescued so); weight decay may not
    changed = toy_recipe([{**STAGES[0], "weight_decay": 0.2}, STAGES[1]])
    with pytest.raises(ConfigError, match="different recipe"):
        run_recipe(changed, tmp_path, resume=True, progress=False, model_builder=toy_builder(), datasets=DATASETS)


def test_resume_without_checkpoint_starts_fresh(tmp_path, reference):
    run(tmp_path, resume=True)
    assert torch.equal(final_state(tmp_path)["head.1.weight"], final_state(reference)["head.1.weight"])


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    run(tmp_path, stop_after_steps=2)
    (latest,) = list(ckpt.checkpoint_dir(tmp_path).iterdir())
    names = sorted(p.name for p in latest.iterdir())
    assert names == [
        "model.safetensors",
        "optimizer.json",
        "optimizer.safetensors",
        "rng-rank0.json",
        "rng-rank0.safetensors",
        "state.json",
    ]
    state = json.loads((latest / "state.json").read_text())
    assert state["sampler"] == {"epoch": 0, "index": 8, "seed": 0, "num_samples": 10}
    assert (state["stage_index"], state["stage_step"], state["stage_done"]) == (0, 2, False)


def test_resume_into_a_stage_whose_cache_the_killed_run_filled(tmp_path):
    # The killed run cached stage b's features before its checkpoint; the resumed run then hits where the
    # uninterrupted one computed, in batches of another make-up. Exact only if a sample keeps its first features.
    stages = [
        {"name": "a", "train": ["vision", "head"], "steps": 5, "data": {"name": "toy", "n": 10}},
        {"name": "b", "train": ["head"], "steps": 4, "data": {"name": "toy", "n": 6, "seed": 1}},
    ]

    def go(out, **kw):
        return run_recipe(
            toy_recipe(stages), out, progress=False, model_builder=toy_builder(dropout=0.2), datasets=DATASETS, **kw
        )

    go(tmp_path / "ref")
    go(tmp_path / "cut", stop_after_steps=7)
    assert go(tmp_path / "cut", resume=True)["resumed_from"].endswith("step-00000005")
    want, got = final_state(tmp_path / "ref"), final_state(tmp_path / "cut")
    for k in want:
        assert torch.equal(want[k], got[k]), k
