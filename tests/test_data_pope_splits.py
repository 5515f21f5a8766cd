"""POPE sets are right (present/absent, popular, adversarial); held-out and confounded splits hold their promises."""

from collections import Counter

import pytest

from modalign.data.worlds.shapes import ShapesWorld
from modalign.data.worlds.shapes.scenes import present_objects
from modalign.data.worlds.shapes.splits import (
    CONFOUND_COLOR,
    CONFOUND_NEEDS,
    CONFOUND_SHAPE,
    CONFOUND_WITH,
    default_heldout_pairs,
)


def test_pope_present_absent_and_samplers():
    ds = ShapesWorld(task="pope", n=40, seed=1, max_objects=5)
    scenes = [ds.scene(i) for i in range(ds.n)]
    # Independent counts over the split: scenes containing each object, and pairwise co-occurrence.
    freq = Counter(o for s in scenes for o in present_objects(s))
    co = Counter((a, b) for s in scenes for a in present_objects(s) for b in present_objects(s) if a != b)
    by_image = {}
    for idx in range(len(ds)):
        rec = ds.record(idx)
        by_image.setdefault((rec["scene_index"], rec["sampler"]), []).append(rec)
        present = present_objects(ds.scene(rec["scene_index"]))
        article = "an" if rec["object"].startswith("orange") else "a"
        assert rec["question"] == f"Is there {article} {rec['object']} in the image?"
        assert (rec["object"] in present) == (rec["answer"] == "yes")
    assert {s for _, s in by_image} == {"random", "popular", "adversarial"}
    for (i, sampler), recs in by_image.items():
        present = present_objects(scenes[i])
        absent = [r["object"] for r in recs if r["answer"] == "no"]
        assert sum(r["answer"] == "yes" for r in recs) == 3 and len(absent) == 3
        assert len(set(absent)) == 3
        others = [o for o in ds.pope_stats.vocabulary if o not in present]
        if sampler == "popular":
            assert min(freq[o] for o in absent) >= max(freq[o] for o in others if o not in absent)
        if sampler == "adversarial":

            def score(o, present=present):
                return sum(co[(p, o)] for p in present)

            assert min(score(o) for o in absent) >= max(score(o) for o in others if o not in absent)
            assert max(score(o) for o in absent) > 0


def test_heldout_pairs_never_in_training_splits_and_in_every_heldout_scene():
    held = set(default_heldout_pairs())
    assert len({c for c, _ in held}) == len(held) == len({s for _, s in held})
    for split in ("train", "test"):
        ds = ShapesWorld(task="caption", n=300, split=split, seed=2, max_objects=5)
        pairs = {(o["color"], o["shape"]) for i in range(ds.n) for o in ds.scene(i)["objects"]}
        assert not pairs & held
        assert {c for c, _ in held} <= {c for c, _ in pairs} and {s for _, s in held} <= {s for _, s in pairs}
    wino = ShapesWorld(task="winoground", n=20, split="train", seed=2)
    for i in range(wino.n):
        for scene in wino.record(i)["scenes"]:
            assert not {(o["color"], o["shape"]) for o in scene["objects"]} & held
    ds = ShapesWorld(task="caption", n=100, split="heldout", seed=2)
    for i in range(ds.n):
        assert {(o["color"], o["shape"]) for o in ds.scene(i)["objects"]} & held


def test_training_text_never_names_a_heldout_pair():
    """Not even as an absent object: asked only with answer "no", "red star" would become a text-only prior."""
    held_phrases = [f"{c} {s}" for c, s in default_heldout_pairs()]
    texts = []
    instruct = ShapesWorld(task="instruct", n=400, split="train", seed=3)
    for i in range(len(instruct)):
        texts += [t["value"] for t in instruct[i]["conversations"]]
    vqa = ShapesWorld(task="vqa", n=400, split="train", seed=3)
    texts += [vqa[i]["question"] for i in range(len(vqa))]
    assert sum("Is there a" in t for t in texts) > 200  # existence questions were asked...
    assert not [t for t in texts if any(p in t for p in held_phrases)]  # ...never about a held-out pair
    # the held-out split does ask about them (present and absent)
    vqa = ShapesWorld(task="vqa", n=400, split="heldout", seed=3)
    asked = [vqa[i] for i in range(len(vqa)) if any(p in vqa[i]["question"] for p in held_phrases)]
    assert {"yes", "no"} <= {r["answer"] for r in asked}


def test_confounded_train_ties_and_test_breaks_them():
    train = ShapesWorld(task="caption", n=300, split="confounded-train", seed=3, max_objects=4)
    test = ShapesWorld(task="caption", n=300, split="confounded-test", seed=3, max_objects=4)
    n_square = n_star = 0
    for i in range(train.n):
        objs = train.scene(i)["objects"]
        shapes = {o["shape"] for o in objs}
        for o in objs:
            assert (o["shape"] == CONFOUND_SHAPE) == (o["color"] == CONFOUND_COLOR)
            n_square += o["shape"] == CONFOUND_SHAPE
        if CONFOUND_WITH in shapes:
            n_star += 1
            assert CONFOUND_NEEDS in shapes
    assert n_square > 50 and n_star > 30  # the shortcut is common, not a rarity
    tab = train.cooccurrence()
    assert tab["shape_cooccurrence"][CONFOUND_WITH][CONFOUND_NEEDS] == tab["scenes_with_shape"][CONFOUND_WITH]
    assert sum(tab["shape_color"][CONFOUND_SHAPE].values()) == tab["shape_color"][CONFOUND_SHAPE][CONFOUND_COLOR]
    test_squares = test_stars = 0
    for i in range(test.n):
        objs = test.scene(i)["objects"]
        shapes = {o["shape"] for o in objs}
        assert not (CONFOUND_WITH in shapes and CONFOUND_NEEDS in shapes)
        for o in objs:
            assert not (o["shape"] == CONFOUND_SHAPE and o["color"] == CONFOUND_COLOR)
            test_squares += o["shape"] == CONFOUND_SHAPE
        test_stars += CONFOUND_WITH in shapes
    assert test_squares > 30 and test_stars > 30
    ttab = test.cooccurrence()
    assert ttab["shape_cooccurrence"][CONFOUND_WITH][CONFOUND_NEEDS] == 0
    assert ttab["shape_color"][CONFOUND_SHAPE][CONFOUND_COLOR] == 0


def test_pope_samplers_from_a_command_line_string():
    ds = ShapesWorld(task="pope", n=10, seed=1, pope_samplers="random+adversarial")
    assert ds.pope_samplers == ("random", "adversarial")
    assert {ds[i]["sampler"] for i in range(len(ds))} == {"random", "adversarial"}
    with pytest.raises(ValueError, match="unknown POPE sampler"):
        ShapesWorld(task="pope", n=10, pope_samplers="r")
