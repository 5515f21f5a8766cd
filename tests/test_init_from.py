"""`init_from`: a recipe starts from a saved model's weights and tokenizer; mismatches are refused up front."""

import json

import pytest
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
import torch
from safetensors.torch import load_file
from test_vlm_tiny_parts import tiny_cfg

from modalign.config import validate_recipe
from modalign.registry import ConfigError
from modalign.trainer import run_recipe


def _recipe(stages, **top):
    return validate_recipe(
        {"name": "tiny-vlm", "seed": 0, "model": tiny_cfg("mlp").model_dump(), "stages": stages, **top}
    )


def _stage(name, objective, task, train, steps=3):
    return {
        "name": name,
        "objective": objective,
        "steps": steps,
        "batch_size": 4,
        "lr": 0.01,
        "log_every": 1,
        "data": {"name": "shapes", "task": task, "n": 12, "image_size": 32},
        "train": train,
    }


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("first")
    run_recipe(_recipe([_stage("instruct", "instruct", "instruct", ["connector", "lm"])]), out, progress=False)
    return out


def _lm_weights(directory):
    return {k: v for k, v in load_file(str(directory / "model.safetensors")).items() if k.startswith("lm.")}


def test_continues_from_the_saved_weights_and_tokenizer(tmp_path, first_run):
    # a caption stage on other text, the LM frozen: the LM must be the first run's trained one, and the tokenizer
    # the saved one, not a tokenizer retrained on the new stage's captions
    recipe = _recipe([_stage("align", "caption", "caption", ["connector"])], init_from=str(first_run / "final"))
    run_recipe(recipe, tmp_path / "second", progress=False)
    saved, got = _lm_weights(first_run / "final"), _lm_weights(tmp_path / "second" / "final")
    assert saved.keys() == got.keys() and all(torch.equal(saved[k], got[k]) for k in saved)
    fresh = tmp_path / "fresh"
    run_recipe(_recipe([_stage("align", "caption", "caption", ["connector"])]), fresh, progress=False)
    assert any(not torch.equal(saved[k], v) for k, v in _lm_weights(fresh / "final").items())
    vocab = [
        json.loads((d / "final" / "tokenizer.json").read_text())["model"]["vocab"]
        for d in (first_run, tmp_path / "second", fresh)
    ]
    assert vocab[0] == vocab[1] and vocab[0] != vocab[2]


def test_an_init_from_run_resumes_exactly(tmp_path, first_run):
    recipe = _recipe(
        [_stage("more", "instruct", "instruct", ["connector", "lm"], steps=4)], init_from=str(first_run / "final")
    )
    run_recipe(recipe, tmp_path / "whole", progress=False)
    assert run_recipe(recipe, tmp_path / "cut", progress=False, stop_after_steps=2)["stopped"]
    run_recipe(recipe, tmp_path / "cut", progress=False, resume=True)
    a, b = (load_file(str(tmp_path / d / "final" / "model.safetensors")) for d in ("whole", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_refuses_a_missing_directory_or_another_model(tmp_path, first_run):
    stage = _stage("align", "caption", "caption", ["connector"])
    with pytest.raises(ConfigError, match="not a saved model directory"):
        run_recipe(_recipe([stage], init_from=str(tmp_path / "nowhere")), tmp_path / "a", progress=False)
    other = _recipe([stage], init_from=str(first_run / "final")).model_dump()
    other["model"]["connector"] = {"name": "linear"}
    with pytest.raises(ConfigError, match=r"differs from this recipe's `model:` in \['connector'\]"):
        run_recipe(validate_recipe(other), tmp_path / "b", progress=False)
    assert not (tmp_path / "b" / "checkpoints").exists()
