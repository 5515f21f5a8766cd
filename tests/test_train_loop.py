"""run_recipe on the toy model: exact accumulation, multi-stage outputs, freeze plans, feature cache, logs, errors."""

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from train_toys import DATASETS, final_state, toy_builder, toy_recipe

from modalign.registry import ConfigError
from modalign.trainer import run_recipe


def run(recipe, out, **kw):
    kw.setdefault("model_builder", toy_builder(dropout=0.0))
    return run_recipe(recipe, out, progress=False, datasets=kw.pop("datasets", DATASETS), **kw)


def assert_close(a, b, tol):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=tol, rtol=0), (k, (a[k] - b[k]).abs().max())


@pytest.mark.parametrize("objective", ["caption", "instruct"])  # example-mean and token-weighted losses
def test_grad_accumulation_equals_one_big_batch(tmp_path, objective):
    stage = {
        "objective": objective,
        "train": ["vision", "head"],
        "batch_size": 8,
        "steps": 3,
        "cache_frozen_features": False,
    }
    run(toy_recipe([{**stage, "name": "a", "grad_accum": 1}]), tmp_path / "one")
    run(toy_recipe([{**stage, "name": "a", "grad_accum": 4}]), tmp_path / "four")
    one, four = final_state(tmp_path / "one"), final_state(tmp_path / "four")
    assert_close(one, four, 1e-6)
    assert not torch.equal(one["head.1.weight"], final_state_init()["head.1.weight"])


def final_state_init():
    torch.manual_seed(0)
    from train_toys import ToyModel

    from modalign.trainer.runner import _seed_all

    _seed_all(0)
    return ToyModel().state_dict()


def test_token_weighting_matters(tmp_path):
    """Without loss_weight, averaging micro-batch means of a token-weighted loss is not one big batch."""
    stage = {"objective": "instruct", "train": ["head"], "batch_size": 8, "steps": 2, "name": "a"}
    run(toy_recipe([{**stage, "grad_accum": 1}]), tmp_path / "one")
    run(toy_recipe([{**stage, "grad_accum": 4}]), tmp_path / "four")
    import train_toys

    original = train_toys.ToyModel.training_loss

    def no_weight(self, batch, objective):
        out = original(self, batch, objective)
        out.pop("loss_weight", None)
        return out

    train_toys.ToyModel.training_loss = no_weight
    try:
        run(toy_recipe([{**stage, "grad_accum": 4}]), tmp_path / "naive")
    finally:
        train_toys.ToyModel.training_loss = original
    one = final_state(tmp_path / "one")["head.1.weight"]
    assert torch.allclose(one, final_state(tmp_path / "four")["head.1.weight"], atol=1e-6)
    assert not torch.allclose(one, final_state(tmp_path / "naive")["head.1.weight"], atol=1e-4)


def test_two_stages_freeze_plans_outputs_and_logs(tmp_path):
    recipe = toy_recipe(
        [
            {
                "name": "align",
                "train": ["head"],
                "steps": 3,
                "warmup_steps": 1,
                "checkpoint_every": 2,
                "data": {"name": "toy", "n": 8},
            },
            {"name": "tune", "train": ["lm.lora", "head"], "lora": {"r": 2}, "steps": 2, "schedule": "linear"},
        ]
    )
    seen = []
    out = run(
        recipe,
        tmp_path,
        model_builder=toy_builder(),
        evaluate=lambda m, s, step: seen.append((s.name, step, m.training)) or {"score": float(step)},
    )
    assert out["global_step"] == 5 and not out["stopped"]
    init = final_state_init()
    stage1 = __import__("safetensors.torch").torch.load_file(str(tmp_path / "stages/align/model.safetensors"))
    final = final_state(tmp_path)
    # stage 1 trains only the head; stage 2 only the head and the adapters
    assert torch.equal(stage1["vision.0.weight"], init["vision.0.weight"])
    assert not torch.equal(stage1["head.1.weight"], init["head.1.weight"])
    assert torch.equal(final["lm.proj.weight"], init["lm.proj.weight"])
    assert "lm.lora_A" in final and not torch.equal(final["lm.lora_B"], torch.zeros(8, 2))
    assert [s["trainable"] for s in out["stages"]] == [27, 27 + 32]
    # vision is frozen in both stages, so its features come from the cache after the first epoch (8 samples)
    assert out["stages"][0]["cache"] == {"hits": 4, "misses": 8}
    assert not seen  # eval_every is 0
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r and "event" not in r]
    assert [r["global_step"] for r in steps] == [1, 2, 3, 4, 5]
    assert steps[0]["lr"] == 0.05 and all(k in steps[0] for k in ("grad_norm", "steps_per_s", "epoch", "acc"))
    starts = [r for r in records if r.get("event") == "stage_start"]
    assert starts[0]["freeze"]["trainable"] == 27 and starts[0]["dataset.skipped"] == 0
    assert list((tmp_path / "tb").iterdir())
    assert [p.name for p in sorted((tmp_path / "checkpoints").iterdir())] == ["step-00000003", "step-00000005"]
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.bin"))


def test_periodic_eval_runs_in_eval_mode_and_is_logged(tmp_path):
    seen = []

    def evaluate(model, stage, step):
        seen.append((stage.name, step, model.training))
        return {"score": step * 2.0, "note": "text is kept in JSONL only"}

    run(toy_recipe([{"name": "a", "train": ["head"], "steps": 4, "eval_every": 2}]), tmp_path, evaluate=evaluate)
    assert seen == [("a", 2, False), ("a", 4, False)]
    evals = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["eval/score"] for e in evals] == [4.0, 8.0] and evals[0]["results"]["note"].startswith("text")


def test_up_front_errors(tmp_path):
    with pytest.raises(ConfigError, match="divisible by grad_accum x processes = 3 x 1"):
        run(toy_recipe([{"name": "a", "train": ["head"], "batch_size": 4, "grad_accum": 3}]), tmp_path / "a")
    with pytest.raises(ConfigError, match="is empty"):
        run(toy_recipe([{"name": "a", "train": ["head"], "data": {"name": "toy", "n": 0}}]), tmp_path / "b")
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        run(toy_recipe([{"name": "a", "train": ["head"], "data": {"name": "nope"}}]), tmp_path / "c")
    with pytest.raises(ConfigError, match="does not have"):
        run(toy_recipe([{"name": "a", "train": ["connector"]}]), tmp_path / "d")
    run(toy_recipe([{"name": "a", "train": ["head"], "steps": 1}]), tmp_path / "e")
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        run(toy_recipe([{"name": "a", "train": ["head"], "steps": 1}]), tmp_path / "e")


def test_bad_record_is_named_and_skip_bad_counts(tmp_path):
    bad = {"name": "toy", "n": 8, "bad_index": 5}
    with pytest.raises(RuntimeError, match="record 5 of dataset 'toy' failed to load"):
        run(toy_recipe([{"name": "a", "train": ["head"], "data": bad, "batch_size": 8, "steps": 1}]), tmp_path / "a")
    run(
        toy_recipe([{"name": "a", "train": ["head"], "data": bad, "batch_size": 7, "steps": 1, "skip_bad": True}]),
        tmp_path / "b",
    )
    start = json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[0])
    assert start["dataset.skipped"] == 1 and start["dataset_size"] == 7
