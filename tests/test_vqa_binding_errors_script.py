"""scripts/vqa_binding_errors.py: answers classified by hand, and a tally that covers every question."""

from __future__ import annotations

import pytest

from modalign.data.shapes import ShapesWorld

from script_loader import load_script


def _script():
    return load_script("vqa_binding_errors")


def test_classify_by_hand():
    s = _script()
    objs = [{"color": "red", "shape": "star"}, {"color": "blue", "shape": "circle"}]
    assert s.classify("Red.", "red", objs, "color") == "right"
    assert s.classify("blue", "red", objs, "color") == "binding"
    assert s.classify("green", "red", objs, "color") == "absent"
    assert s.classify("circle", "star", objs, "shape") == "binding"
    assert s.classify("cross", "star", objs, "shape") == "absent"
    objs = [{"position": "top left"}, {"position": "center"}]
    assert s.classify("Top left.", "top left", objs, "position") == "right"
    assert s.classify("center", "top left", objs, "position") == "binding"
    assert s.classify("bottom", "top left", objs, "position") == "absent"
    assert s.classify("Yes.", "yes", objs, "relation") == "right-yes"
    assert s.classify("no", "no", objs, "relation") == "right-no"
    assert s.classify("yes", "no", objs, "relation") == "false-yes"
    assert s.classify("no", "yes", objs, "relation") == "false-no"
    assert s.classify("left", "yes", objs, "relation") == "other"


class _Says:
    """Answers every question with one word (`blue`: right, binding or absent depending on the scene)."""

    def __init__(self, word: str = "blue"):
        self.word = word

    def generate(self, images, prompts, max_new_tokens=8):
        return [self.word] * len(prompts)


def test_tally_counts_every_question_once():
    s = _script()
    world = ShapesWorld(task="vqa", n=12, split="test")
    asked = [world.record(i) for i in range(len(world))]
    out, by_objects = s.tally(_Says(), world, ["color"])
    color = [r for r in asked if r["qtype"] == "color"]
    assert sum(out["color"].values()) == len(color) > 0
    assert out["color"]["right"] == sum(r["answer"] == "blue" for r in color)
    has_blue = [any(o["color"] == "blue" for o in world.scene(r["scene_index"])["objects"]) for r in color]
    assert out["color"]["binding"] == sum(h and r["answer"] != "blue" for h, r in zip(has_blue, color))
    scenes = [len(world.scene(r["scene_index"])["objects"]) for r in color]
    assert {k: v["asked"] for k, v in by_objects["color"].items()} == {k: scenes.count(k) for k in set(scenes)}
    assert sum(v["right"] for v in by_objects["color"].values()) == out["color"]["right"]
    with pytest.raises(ValueError, match="count"):
        s.tally(_Says(), world, ["color", "count"])


class _Prompts:
    def render(self, messages, add_generation_prompt=False):
        return " | ".join(m["content"] for m in messages)


class _SaysInContext(_Says):
    """Records the rendered prompts it is asked to continue."""

    prompts = _Prompts()

    def __init__(self):
        super().__init__()
        self.seen = []

    def complete(self, images, texts, max_new_tokens=8):
        self.seen += texts
        return [self.word] * len(texts)


def test_tally_after_the_true_description():
    s = _script()
    world = ShapesWorld(task="vqa", n=12, split="test")
    model = _SaysInContext()
    out, _ = s.tally(model, world, ["position"], context="description")
    asked = [world.record(i) for i in range(len(world)) if world.record(i)["qtype"] == "position"]
    assert len(model.seen) == sum(out["position"].values()) == len(asked) > 0
    for text, rec in zip(model.seen, asked):
        scene = world.scene(rec["scene_index"])
        first, description, question = text.split(" | ")
        assert first == "<image>\nDescribe the image."
        assert all(f"{o['color']} {o['shape']}" in description for o in scene["objects"])
        assert question == f"{rec['question']} Answer with a single word or phrase."
    with pytest.raises(ValueError, match="context"):
        s.tally(model, world, ["position"], context="caption")


def test_relation_tally_separates_a_yes_bias():
    s = _script()
    world = ShapesWorld(task="vqa", n=30, split="test")
    rel = [world.record(i) for i in range(len(world)) if world.record(i)["qtype"] == "relation"]
    out, by_objects = s.tally(_Says("yes"), world, ["relation"])
    truth_yes = sum(r["answer"] == "yes" for r in rel)
    assert 0 < truth_yes < len(rel)
    assert out["relation"] == {"right-yes": truth_yes, "false-yes": len(rel) - truth_yes}
    assert sum(v["right"] for v in by_objects["relation"].values()) == truth_yes
