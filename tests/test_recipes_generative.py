"""The generative recipes (llava-, blip2-, flamingo-shapes on SmolLM2, the PaLI-style freeze plan, the from-scratch
ablation): they validate, build the model they describe (a tiny LM in place of SmolLM2 in the fast tests; the real
one in a slow test), and a tiny llava-shapes trains through the real `modalign train` CLI with its loss falling and
its eval results written."""

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


CASES = [
    # name, fusion, tower tokens, LM positions per image, objectives, the last stage's freeze plan
    ("llava-shapes", "prefix", 16, 16, ["caption", "instruct"], ["connector", "lm.lora"]),  # one per 4x4 cell
    ("llava-shapes-pali", "prefix", 16, 16, ["caption", "instruct"], ["vision", "connector", "lm"]),  # nothing frozen
    ("blip2-shapes", "prefix", 16, 8, ["qformer", "caption", "instruct"], ["connector", "lm.lora"]),  # the queries
    ("flamingo-shapes", "xattn", 16, 1, ["caption", "instruct"], ["connector", "lm.lora"]),  # only the <image> marker
    ("llava-shapes-tiny-llama", "prefix", 16, 16, ["caption", "instruct"], ["connector", "lm"]),  # from scratch
]


@pytest.mark.parametrize("name, fusion, tower_tokens, in_sequence, objectives, last_train", CASES)
def test_recipe_builds_its_model(name, fusion, tower_tokens, in_sequence, objectives, last_train):
    recipe = load_recipe(RECIPES / f"{name}.yaml", [TINY_LM])
    assert [s.objective for s in recipe.stages] == objectives
    assert all(s.train == ["connector"] for s in recipe.stages[:-1])  # LLaVA: the LM trains only when instructed
    assert recipe.stages[-1].train == last_train
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
@pytest.mark.parametrize("name", ["llava-shapes", "blip2-shapes", "flamingo-shapes"])
def test_smollm2_recipe_builds_the_real_model_and_takes_a_training_step(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.model.lm.name == "smollm2-135m"
    model = build_model(recipe.model)
    assert type(model.base_lm()).__name__ == "LlamaForCausalLM" and model.base_lm().config.num_hidden_layers == 30
    stage = recipe.stages[-1]
    from modalign.trainer.freeze import apply_freeze_plan, prepare_stage
    from modalign.trainer.step import autocast

    prepare_stage(model, stage)
    report = apply_freeze_plan(model, stage.train)
    assert report.per_component["lm"]["trainable"] == 0 and report.per_component["lm.lora"]["trainable"] > 0
    data = DATASETS["shapes"](**{**stage.data.params(), "n": 2})
    batch = model.collate([data[0], data[1]])
    with autocast(stage.precision):
        loss = model.training_loss(batch, stage.objective)["loss"]
    loss.backward()
    assert 0 < loss.item() < 10  # a pretrained LM: far below log(49,152) = 10.8 from the first step
    assert all(p.grad is None for p in model.base_lm().parameters() if not p.requires_grad)


@pytest.mark.slow
def test_tiny_llava_shapes_from_scratch_trains_and_evaluates_through_the_cli(tmp_path):
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
    suites = [e.suite for e in load_recipe(RECIPES / "llava-shapes-tiny-llama.yaml").eval]
    for i, suite in enumerate(suites):
        sets += [f"eval.{i}.data.n=6", f"eval.{i}.limit=6"]
        if suite in ("caption", "chair"):
            sets.append(f"eval.{i}.max_new_tokens=16")
    assert (
        main(
            [
                "train",
                str(RECIPES / "llava-shapes-tiny-llama.yaml"),
                "--out",
                str(out),
                *[a for s in sets for a in ("--set", s)],
            ]
        )
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
