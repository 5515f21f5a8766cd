"""The generative recipes (llava-, blip2-, flamingo-shapes): they validate, build the model they describe, and a tiny
llava-shapes trains through the real `modalign train` CLI with its loss falling and its eval results written."""

from __future__ import annotations

import json

import pytest

from modalign.config import load_recipe
from modalign.data import DATASETS
from modalign.models import build_model
from modalign.recipes import path as recipe_path

RECIPES = recipe_path("llava-shapes").parent
TINY_LM = (
    "model.lm={name: tiny-llama, hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, "
    "max_position_embeddings: 256, vocab_size: 300}"
)


def _corpus():
    yield from DATASETS["shapes"](task="instruct", n=20, split="train").texts()


@pytest.mark.parametrize(
    "name, fusion, tower_tokens, in_sequence, objectives",
    [
        ("llava-shapes", "prefix", 16, 16, ["caption", "instruct"]),  # one LM token per 4x4 tower cell
        ("blip2-shapes", "prefix", 16, 8, ["qformer", "caption", "instruct"]),  # the Q-Former's queries; BLIP-2 stage 1
        ("flamingo-shapes", "xattn", 16, 1, ["caption", "instruct"]),  # only the <image> marker in the text
    ],
)
def test_recipe_builds_its_model(name, fusion, tower_tokens, in_sequence, objectives):
    recipe = load_recipe(RECIPES / f"{name}.yaml", [TINY_LM])
    assert [s.objective for s in recipe.stages] == objectives
    assert all(s.train == ["connector"] for s in recipe.stages[:-1])  # LLaVA: the LM trains only when instructed
    assert recipe.stages[-1].train == ["connector", "lm"]
    # everything on the held-out compositions, except POPE on the confounded split's test scenes
    assert {e.data.params()["split"] for e in recipe.eval if e.data.params()["split"] != "confounded-test"} == {
        "heldout"
    }
    assert all(e.suite == "pope" for e in recipe.eval if e.data.params()["split"] == "confounded-test")
    model = build_model(recipe.model, text_corpus=_corpus())
    assert model.fusion == fusion
    assert model.num_vision_tokens == tower_tokens
    assert model.prompts.tokens_per_image == in_sequence
    pos = getattr(model.connector, "pos", None)
    if pos is not None and pos.positions:
        assert pos.positions == tower_tokens  # `positions: true` sized to the tower


@pytest.mark.slow
def test_tiny_llava_shapes_trains_and_evaluates_through_the_cli(tmp_path):
    from modalign.cli import main

    out = tmp_path / "run"
    sets = [
        TINY_LM,
        "model.vision.image_size=64",  # 2x2 tower tokens: the fastest tower setting
        "stages.0.data.n=64",
        "stages.0.steps=6",
        "stages.0.batch_size=8",
        "stages.0.log_every=2",
        "stages.1.data.n=64",
        "stages.1.steps=30",
        "stages.1.batch_size=8",
        "stages.1.log_every=5",
        "stages.1.lr=0.005",
        "stages.1.warmup_steps=2",
    ]
    suites = [e.suite for e in load_recipe(RECIPES / "llava-shapes.yaml").eval]
    for i, suite in enumerate(suites):
        sets += [f"eval.{i}.data.n=6", f"eval.{i}.limit=6"]
        if suite in ("caption", "chair"):
            sets.append(f"eval.{i}.max_new_tokens=16")
    assert (
        main(["train", str(RECIPES / "llava-shapes.yaml"), "--out", str(out), *[a for s in sets for a in ("--set", s)]])
        == 0
    )

    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r.get("stage") == "instruct" and "loss" in r and "event" not in r]
    assert len(losses) == 6
    assert losses[-1] < losses[0] - 0.5, losses  # a from-scratch LM first learns the answers' token statistics

    results = json.loads((out / "eval" / "results.json").read_text())["suites"]
    assert {"vqa", "pope", "caption", "chair"} <= set(results) and len(results) == len(suites)
    assert 0.0 <= results["vqa"]["metrics"]["accuracy"] <= 1.0
    assert results["vqa"]["settings"]["split"] == "heldout"
    assert "random_f1" in results["pope"]["metrics"]
    assert (out / "final" / "model.safetensors").exists()
    assert (out / "eval" / "report.html").exists()
