"""The non-finite guard: a bad step (non-finite loss OR gradient norm) is skipped and counted, too many in a row stop
the run with a message naming stage, step and causes, nothing non-finite is saved, and a resume with another
learning rate recovers."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from guard_toys import BlowUpToy, NaNBufferToy, PoisonToy, builder
from train_toys import DATASETS, ToyPairs, final_state, toy_recipe

from modalign.trainer import checkpoint as ckpt
from modalign.trainer import run_recipe
from modalign.trainer.distributed import DistInfo
from modalign.trainer.guard import TrainingDiverged, check_finite
from modalign.trainer.optim import build_optimizer
from modalign.trainer.step import train_step

STAGE = {"name": "a", "train": ["vision", "head"], "steps": 12, "checkpoint_every": 2, "data": {"name": "toy", "n": 10}}


def run(stages, out, model_builder, **kw):
    return run_recipe(toy_recipe(stages), out, progress=False, model_builder=model_builder, datasets=DATASETS, **kw)


def events(out, kind):
    rows = [json.loads(x) for x in (Path(out) / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("event") == kind]


def checkpoints_are_finite(out):
    root = ckpt.checkpoint_dir(out)
    for d in root.iterdir() if root.exists() else []:
        for f in d.glob("*.safetensors"):
            for name, t in load_file(str(f)).items():
                assert not t.is_floating_point() or torch.isfinite(t).all(), (d.name, f.name, name)


def test_a_nan_gradient_with_a_finite_loss_is_skipped_not_applied():
    torch.manual_seed(0)
    model = PoisonToy(poison=("toy-3",))
    model.requires_grad_(True)
    opt = build_optimizer(model, 0.1, 0.0)
    ds = ToyPairs(n=6)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    poisoned = [(model.collate([ds[3], ds[4]]), 2)]
    out = train_step(model, opt, poisoned, "caption", 2, DistInfo(), 0.1, 1.0)
    assert math.isfinite(out["loss"]) and not math.isfinite(out["grad_norm"]) and out["skipped"] == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # no update
    assert all(p.grad is None for p in model.parameters()) and not opt.state  # grads zeroed, Adam untouched
    out = train_step(model, opt, [(model.collate([ds[0], ds[1]]), 2)], "caption", 2, DistInfo(), 0.1, 1.0)
    assert out["skipped"] == 0.0 and not torch.equal(before["head.1.weight"], model.state_dict()["head.1.weight"])


def test_bad_data_steps_are_skipped_counted_and_logged(tmp_path):
    summary = run([{**STAGE, "max_bad_steps": 12}], tmp_path, builder(PoisonToy, poison=("toy-3",)))
    bad = events(tmp_path, "bad_step")
    assert summary["stages"][0]["bad_steps"] == len(bad) > 0
    assert all("toy-3" in b["ids"] and math.isfinite(b["loss"]) and not math.isfinite(b["grad_norm"]) for b in bad)
    assert all(torch.isfinite(t).all() for t in final_state(tmp_path).values())
    checkpoints_are_finite(tmp_path)


def test_a_run_that_keeps_failing_stops_naming_stage_step_and_causes(tmp_path):
    # lr 1e6: the first step blows the head weights up; from the second on every loss is NaN
    with pytest.raises(TrainingDiverged) as err:
        run([{**STAGE, "lr": 1e6}], tmp_path, builder(BlowUpToy))
    msg = str(err.value)
    assert "stage 'a', step 6 (global step 6): 5 steps in a row" in msg
    assert "learning rate is too high" in msg and "half precision" in msg and "data" in msg
    # steps 2 and 4 fell in the run of bad steps: the weights step 1 blew up were never checkpointed
    assert "No checkpoint was written yet" in msg
    assert [e["step"] for e in events(tmp_path, "checkpoint_deferred")] == [2, 4]
    assert not ckpt.checkpoint_dir(tmp_path).exists()
    assert not (tmp_path / "final").exists() and not (tmp_path / "stages").exists()
    assert events(tmp_path, "diverged")[0]["step"] == 6


def test_resume_with_the_old_learning_rate_recovers_and_equals_an_uninterrupted_run(tmp_path):
    run([STAGE], tmp_path / "ref", builder(BlowUpToy))
    run([STAGE], tmp_path / "cut", builder(BlowUpToy), stop_after_steps=4)
    with pytest.raises(TrainingDiverged, match="step-00000004"):  # someone raised the lr and resumed
        run([{**STAGE, "lr": 1e6}], tmp_path / "cut", builder(BlowUpToy), resume=True)
    assert events(tmp_path / "cut", "resume_changed")[0]["changes"] == {"a": {"lr": [0.05, 1e6]}}
    out = run([STAGE], tmp_path / "cut", builder(BlowUpToy), resume=True)
    assert out["resumed_from"].endswith("step-00000004")
    want, got = final_state(tmp_path / "ref"), final_state(tmp_path / "cut")
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_resume_may_change_schedule_warmup_and_clipping_and_says_so(tmp_path):
    run([STAGE], tmp_path, builder(BlowUpToy), stop_after_steps=4)
    changed = {**STAGE, "lr": 0.01, "schedule": "constant", "warmup_steps": 2, "max_grad_norm": 0.5}
    with pytest.warns(UserWarning, match="changed settings"):
        run([changed], tmp_path, builder(BlowUpToy), resume=True)
    (ev,) = events(tmp_path, "resume_changed")
    assert ev["changes"]["a"] == {
        "lr": [0.05, 0.01],
        "schedule": ["cosine", "constant"],
        "warmup_steps": [0, 2],
        "max_grad_norm": [None, 0.5],
    }


def test_nothing_non_finite_is_ever_written(tmp_path):
    with pytest.raises(TrainingDiverged, match="refusing to write a checkpoint at global step 4: tensor 'running'"):
        run([STAGE], tmp_path, builder(NaNBufferToy, at_call=3))
    assert [p.name for p in ckpt.checkpoint_dir(tmp_path).iterdir()] == ["step-00000002"]
    checkpoints_are_finite(tmp_path)
    with pytest.raises(TrainingDiverged, match=r"refusing to write the final model: tensor 'w' holds 1 non-finite"):
        check_finite({"w": torch.tensor([1.0, float("inf")]), "n": torch.tensor([3])}, "the final model")


@pytest.mark.slow
def test_modalign_train_of_a_diverging_real_model_exits_3_and_writes_no_final(tmp_path, capsys):
    import yaml
    from train_toys import dual_recipe

    from modalign.cli import main

    (tmp_path / "r.yaml").write_text(yaml.safe_dump(dual_recipe().model_dump(mode="json")))
    sets = [f"--set=stages.{i}.{k}={v}" for i in (0, 1) for k, v in (("lr", "1e6"), ("steps", "10"))]
    assert main(["train", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "run"), *sets]) == 3
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress bars
    assert last.startswith("modalign: training stopped: stage 'lit', step ") and "learning rate is too high" in last
    assert not (tmp_path / "run" / "final").exists()
    checkpoints_are_finite(tmp_path / "run")
