"""The generative recipes (llava-, blip2-, flamingo-shapes): they validate, build the model they describe, and a tiny
llava-shapes trains through the real `modalign train` CLI with its loss falling and its eval results written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modalign.config import load_recipe
from modalign.data import DATASETS
from modalign.models import build_model

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY_LM = "model.lm={name: tiny-llama, hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, " \
          "max_position_embeddings: 256, vocab_size: 300}"


def _corpus():
    yield from DATASETS["shapes"](task="instruct", n=20, split="train").texts()


@pytest.mark.parametrize("name, fusion, tower_tokens, in_sequence, objectives", [
    ("llava-shapes", "prefix", 16, 16, ["caption", "instruct"]),             # one LM token per 4x4 tower cell
    ("llava-shapes-long", "prefix", 64, 64, ["caption", "instruct"]),        # block 7: an 8x8 grid, one token per cell
    ("llava-shapes-describe", "prefix", 100, 100, ["caption", "instruct"]),  # llava-shapes-long's model at 160 px
    ("blip2-shapes", "prefix", 16, 8, ["qformer", "caption", "instruct"]),   # the Q-Former's queries; BLIP-2 stage 1
    ("flamingo-shapes", "xattn", 16, 1, ["caption", "instruct"]),            # only the <image> marker in the text
])
def test_recipe_builds_its_model(name, fusion, tower_tokens, in_sequence, objectives):
    recipe = load_recipe(RECIPES / f"{name}.yaml", [TINY_LM])
    assert [s.objective for s in recipe.stages] == objectives
    assert all(s.train == ["connector"] for s in recipe.stages[:-1])  # LLaVA: the LM trains only when instructed
    assert recipe.stages[-1].train == ["connector", "lm"]
    # everything on the held-out compositions, except POPE on the confounded split's test scenes
    assert {e.data.params()["split"] for e in recipe.eval if e.data.params()["split"] != "confounded-test"} \
        == {"heldout"}
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
        "stages.0.data.n=64", "stages.0.steps=6", "stages.0.batch_size=8", "stages.0.log_every=2",
        "stages.1.data.n=64", "stages.1.steps=30", "stages.1.batch_size=8", "stages.1.log_every=5",
        "stages.1.lr=0.005", "stages.1.warmup_steps=2",
    ]
    suites = [e.suite for e in load_recipe(RECIPES / "llava-shapes.yaml").eval]
    for i, suite in enumerate(suites):
        sets += [f"eval.{i}.data.n=6", f"eval.{i}.limit=6"]
        if suite in ("caption", "chair"):
            sets.append(f"eval.{i}.max_new_tokens=16")
    assert main(["train", str(RECIPES / "llava-shapes.yaml"), "--out", str(out), *[a for s in sets
                                                                                  for a in ("--set", s)]]) == 0

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


def test_the_continuation_recipe_fits_the_run_it_continues():
    # init_from refuses a model config that differs from the saved one: the two recipes must stay in step
    long, more = (load_recipe(RECIPES / f"{n}.yaml") for n in ("llava-shapes-long", "llava-shapes-more"))
    assert more.init_from == "runs/llava-shapes-long/final"
    assert more.model == long.model
    assert [e.model_dump() for e in more.eval] == [e.model_dump() for e in long.eval]
    same_scenes = {k: v for k, v in more.stages[0].data.params().items() if k != "max_turns"}
    assert same_scenes == {k: v for k, v in long.stages[-1].data.params().items() if k != "max_turns"}
    assert more.stages[0].train == ["connector", "lm"]


# Each continuation (init_from) must keep the model and evals of the run it continues, and change only the data
# fields it says it changes.
CONTINUATIONS = [
    ("llava-shapes-more", "llava-shapes-more2", {}),
    ("llava-shapes-more2", "llava-shapes-more3", {"describe_p": 0.3, "describe_at": "alone", "max_turns": 12,
                                                  "questions_per_type": {"position": 3, "relation": 3, "color": 2}}),
    ("llava-shapes-more3", "llava-shapes-more4", {"max_turns": 16, "describe_order": "reading",
                                                  "questions_per_type": {"position": 3, "relation": 6, "color": 2}}),
    ("llava-shapes-more4", "llava-shapes-more5", {"describe_p": 0.0}),
    ("llava-shapes-more5", "llava-shapes-more6", {"describe_p": 0.2}),
    ("llava-shapes-more6", "llava-shapes-more7", {"describe_p": 0.5, "where_first_p": 1.0}),
    ("llava-shapes-more7", "llava-shapes-more8",
     {"questions_per_type": {"position": 3, "relation": 6, "color": 2, "object_at": 3}}),
]


@pytest.mark.parametrize("before, after, changed", CONTINUATIONS, ids=[c[1] for c in CONTINUATIONS])
def test_each_later_continuation_fits_the_run_it_continues(before, after, changed):
    prev, nxt = (load_recipe(RECIPES / f"{n}.yaml") for n in (before, after))
    assert nxt.init_from == f"runs/{before}/final"
    assert nxt.model == prev.model
    assert [e.model_dump() for e in nxt.eval] == [e.model_dump() for e in prev.eval]
    a, b = prev.stages[0].data.params(), nxt.stages[0].data.params()
    assert {k: b.get(k) for k in a.keys() | b.keys() if a.get(k) != b.get(k)} == changed
    if not changed:
        assert nxt.stages[0].data == prev.stages[0].data


def _describer_continuation(name: str):
    """(the describer, a recipe continuing its run, the continuation's data fields that differ from the describer's
    last stage); asserts what every continuation keeps: the run it starts from, the model and the evals (first)."""
    describe, more = (load_recipe(RECIPES / f"{n}.yaml") for n in ("llava-shapes-describe", name))
    assert more.init_from == "runs/llava-shapes-describe/final"
    assert more.model == describe.model
    assert [e.model_dump() for e in more.eval[:len(describe.eval)]] == [e.model_dump() for e in describe.eval]
    a, b = describe.stages[-1].data.params(), more.stages[0].data.params()
    return describe, more, {k: b.get(k) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def test_the_background_continuation_fits_the_describer_and_changes_only_the_background():
    describe, more, changed = _describer_continuation("llava-shapes-describe-background")
    assert changed == {"region_background": True}
    assert more.stages[0].train == ["connector", "lm"] and more.stages[0].lr < describe.stages[-1].lr
    # and its descriptions measured once more, steered to the pairs its tokens hold, on 500 held-out scenes
    (steered,) = more.eval[len(describe.eval):]
    assert steered.suite == "chair" and steered.params() | {"n": steered.data.params()["n"]} == {
        "vocabulary": "shapes", "max_new_tokens": 128, "guide": "tokens", "steer": "complete", "n": 500}


def test_the_tower_continuation_fits_the_describer_and_trains_the_tower_too():
    describe, tower, changed = _describer_continuation("llava-shapes-describe-tower")
    assert changed == {"n": 16000}
    assert tower.stages[0].train == ["vision", "connector", "lm"] and tower.stages[0].lr < describe.stages[-1].lr


def test_the_questions_only_continuation_is_short():
    assert load_recipe(RECIPES / "llava-shapes-more5.yaml").stages[0].steps == 1500
