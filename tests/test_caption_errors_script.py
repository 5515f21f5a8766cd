"""scripts/caption_errors.py: descriptions read object by object, checked by hand and against true descriptions."""

from __future__ import annotations

import numpy as np

from modalign.data.language import detailed_caption
from modalign.data.shapes import ShapesWorld

from script_loader import load_script


def _script():
    return load_script("caption_errors")


OBJS = [{"color": "red", "shape": "star"}, {"color": "blue", "shape": "circle"}, {"color": "green", "shape": "cross"}]


def test_subjects_are_each_sentences_first_colour_and_shape():
    s = _script()
    text = ("There are three objects on a plain grey background. A small red star is in the top left, left of the blue "
            "circle. A circle on the right is blue; it is large, right of the red star. In the center, there is a "
            "large green cross, below the red star.")
    assert s.subjects(text) == ("three", [("red", "star"), ("blue", "circle"), ("green", "cross")])
    assert s.subjects("") == (None, [])


def test_classify_by_hand():
    s = _script()
    opening = "There are three objects on a plain grey background."
    right = s.classify(f"{opening} A red star is here. A blue circle is there. A green cross sits below.", OBJS)
    assert right == {"count_right": 1, "named": 3, "all_named": 1}
    # the cross skipped, the star named twice; "two" is the wrong count
    c = s.classify("There are two objects. A red star is here. A red star is there. A blue circle, left of the "
                   "green cross.", OBJS)
    counts = (c["count_right"], c["named"], c["skipped"], c["repeated"], c["invented"], c["all_named"])
    assert counts == (0, 2, 1, 1, 0, 0)
    # the circle named under a colour no circle has: a wrong colour, also an invention
    c = s.classify(f"{opening} A red star. A yellow circle. A green cross.", OBJS)
    assert (c["named"], c["wrong_color"], c["skipped"], c["invented"], c["all_named"]) == (2, 1, 0, 1, 0)
    # the green cross's pair held out of training: counted apart, named or not
    held = frozenset({("green", "cross")})
    c = s.classify(f"{opening} A red star. A blue circle. A green cross.", OBJS, held)
    assert (c["heldout_objects"], c["heldout_named"], c["named"]) == (1, 1, 3)
    c = s.classify(f"{opening} A red star. A blue circle. A green pentagon.", OBJS, held)
    assert (c["heldout_objects"], c["heldout_named"], c["named"], c["skipped"]) == (1, 0, 2, 1)
    assert "heldout_objects" not in s.classify(f"{opening} A red star.", OBJS)
    # the red circle written with the star's shape, the colour word shared: both red objects counted as shared
    two_red = [OBJS[0], {"color": "red", "shape": "circle"}, OBJS[2]]
    c = s.classify(f"{opening} A red star. A red star. A green cross.", two_red)
    assert (c["shared_objects"], c["shared_named"], c["named"], c["repeated"], c["shared_twice"]) == (2, 1, 2, 1, 1)
    # the red circle left out without the star written twice: not counted as written twice
    c = s.classify(f"{opening} A red star. A green cross.", two_red)
    assert (c["shared_objects"], c["shared_named"], c["shared_twice"]) == (2, 1, 0)
    assert "shared_objects" not in s.classify(f"{opening} A red star. A blue circle. A green cross.", OBJS)
    # two red stars in the scene: one sentence names one of them
    c = s.classify("There are two objects. A red star.", OBJS[:1] * 2)
    assert (c["count_right"], c["named"], c["skipped"], c["repeated"]) == (1, 1, 1, 0)


class _Describes:
    """Answers with the scene's true description, or with its first object named `repeat` times instead."""

    def __init__(self, world, repeat: int = 0):
        self.texts = {}
        for i in range(len(world)):
            scene = world.scene(i)
            text = detailed_caption(scene, np.random.default_rng(i), order="reading", where_first_p=0.5)
            if repeat:
                opening, first = text.split(". ")[:2]
                text = ". ".join([opening] + [first] * repeat) + "."
            self.texts[id(scene)] = text
        self.world, self.calls, self.penalties = world, [], set()

    def generate(self, images, prompts, max_new_tokens, repetition_penalty=1.0):
        self.calls.append(len(images))
        self.penalties.add(repetition_penalty)
        scenes = [self.world.scene(i) for i in range(len(self.world))]
        start = sum(self.calls[:-1])
        return [self.texts[id(sc)] for sc in scenes[start: start + len(images)]]


def test_tally_of_true_descriptions_names_every_object():
    s = _script()
    world = ShapesWorld(task="caption", caption="detailed", n=40, split="heldout")
    by_objects = s.tally(_Describes(world), world, batch_size=16)
    assert sum(c["descriptions"] for c in by_objects.values()) == 40
    for k, c in by_objects.items():
        assert c["all_named"] == c["descriptions"] == c["count_right"]
        assert c["named"] == c["objects"] == k * c["descriptions"]
        assert c["repeated"] == c["invented"] == c["skipped"] == 0
    held = sum(c["heldout_objects"] for c in by_objects.values())
    assert held >= 40  # every held-out scene has a held-out pair
    assert sum(c["heldout_named"] for c in by_objects.values()) == held


def test_tally_counts_a_repeated_first_object():
    s = _script()
    world = ShapesWorld(task="caption", caption="detailed", n=40, split="heldout")
    model = _Describes(world, repeat=3)
    by_objects = s.tally(model, world, batch_size=16, repetition_penalty=1.2)
    assert model.penalties == {1.2}  # passed on to generate
    for k, c in by_objects.items():
        if k == 1:
            assert c["all_named"] == c["descriptions"]  # one object named three times: named, plus two repeats
            assert c["repeated"] == 2 * c["descriptions"]
        else:
            assert c["all_named"] == 0
            assert c["named"] == c["descriptions"]  # only the first object
            assert c["skipped"] + c["wrong_color"] == (k - 1) * c["descriptions"]
        assert c["heldout_named"] <= c["heldout_objects"]
    assert sum(c["heldout_named"] for c in by_objects.values()) < sum(c["heldout_objects"] for c in by_objects.values())


def test_tally_collects_the_descriptions_that_leave_an_object_out():
    s = _script()
    world = ShapesWorld(task="caption", caption="detailed", n=40, split="heldout")
    misses = []
    by_objects = s.tally(_Describes(world, repeat=2), world, batch_size=16, misses=misses)
    crowded = [world.scene(i) for i in range(len(world)) if len(world.scene(i)["objects"]) > 1]
    assert len(misses) == len(crowded) == sum(c["descriptions"] - c["all_named"] for c in by_objects.values()) > 0
    for (scene, said), truth in zip(misses, crowded):
        assert scene["objects"] == truth["objects"]
        assert said.count(". ") == 2  # the opening and the first object's sentence twice
    clean = []
    s.tally(_Describes(world), world, batch_size=16, misses=clean)
    assert clean == []
    line = s.scene_line({"objects": [dict(OBJS[0], size="small", position="top left"),
                                     dict(OBJS[1], size="large", position="center")]})
    assert line == "small red star (top left); large blue circle (center)"
