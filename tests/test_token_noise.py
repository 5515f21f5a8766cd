"""Token noise: only labelled input positions change, at the asked rate, from non-special ids; targets stay; the
stage option is validated, applied in training, and a killed run resumes to the same weights."""

import pytest
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
import torch
from safetensors.torch import load_file
from test_vlm_tiny_parts import CORPUS, tiny_cfg

from modalign.config import validate_recipe
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError
from modalign.trainer import run_recipe
from modalign.trainer.token_noise import IGNORE_INDEX, corrupt_answer_inputs, replacement_ids


def _batch(b=64, t=40):
    ids = torch.arange(b * t).reshape(b, t) % 7 + 100  # real ids, never in the candidates
    labels = ids.clone()
    labels[:, :10] = IGNORE_INDEX  # a prompt that carries no label
    labels[::2, -5:] = IGNORE_INDEX  # padding on half the rows
    return {"input_ids": ids, "labels": labels, "attention_mask": torch.ones_like(ids)}


def test_only_labelled_inputs_change_at_the_asked_rate_and_targets_stay():
    batch, cands = _batch(), torch.tensor([3, 4, 5])
    out = corrupt_answer_inputs(batch, 0.25, cands, torch.Generator().manual_seed(0))
    changed = out["input_ids"] != batch["input_ids"]
    labelled = batch["labels"] != IGNORE_INDEX
    assert not (changed & ~labelled).any()  # prompt and padding untouched
    assert torch.isin(out["input_ids"][changed], cands).all()
    assert torch.equal(out["labels"], batch["labels"]) and out["attention_mask"] is batch["attention_mask"]
    n = int(labelled.sum())
    rate, sigma = float(changed.sum()) / n, (0.25 * 0.75 / n) ** 0.5
    assert abs(rate - 0.25) < 4 * sigma, rate
    assert corrupt_answer_inputs(batch, 0.0, cands) is batch
    again = corrupt_answer_inputs(batch, 0.25, cands, torch.Generator().manual_seed(0))
    assert torch.equal(again["input_ids"], out["input_ids"])
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="token_noise"):
            corrupt_answer_inputs(batch, bad, cands)


def test_replacement_ids_leave_out_every_special_token():
    model = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    ids = set(replacement_ids(model.tokenizer).tolist())
    special = set(model.tokenizer.all_special_ids)
    assert model.image_token_id in special and not ids & special
    assert ids | special == set(range(len(model.tokenizer)))


def _recipe(token_noise, objective="instruct", steps=4):
    stage = {
        "name": "instruct",
        "objective": objective,
        "steps": steps,
        "batch_size": 4,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "instruct", "n": 12, "image_size": 32},
        "train": ["connector", "lm"],
        "log_every": 1,
        "checkpoint_every": 2,
        "transforms": [{"name": "token_noise", "p": token_noise}] if token_noise else [],
    }
    return validate_recipe({"name": "tiny-vlm", "seed": 0, "model": tiny_cfg("mlp").model_dump(), "stages": [stage]})


def test_the_stage_option_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="token_noise' applies to objectives caption, instruct, not 'contrastive'"):
        run_recipe(_recipe(0.1, objective="contrastive"), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="token_noise: p is the share"):
        run_recipe(_recipe(1.0), tmp_path / "b", progress=False)


def _weights(out):
    return load_file(str(out / "final" / "model.safetensors"))


def test_noise_is_applied_in_training_and_a_killed_run_resumes_exactly(tmp_path):
    run_recipe(_recipe(0.3), tmp_path / "whole", progress=False)
    run_recipe(_recipe(0.0), tmp_path / "clean", progress=False)
    first = run_recipe(_recipe(0.3), tmp_path / "killed", progress=False, stop_after_steps=2)
    assert first["stopped"]
    run_recipe(_recipe(0.3), tmp_path / "killed", progress=False, resume=True)
    whole, clean, resumed = (_weights(tmp_path / d) for d in ("whole", "clean", "killed"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert any(not torch.equal(whole[k], clean[k]) for k in whole)
