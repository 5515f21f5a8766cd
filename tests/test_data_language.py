"""Language derived from shapes scenes is true of them: captions, VQA answers, probes, Winoground, grounding."""

import re

import numpy as np
import pytest

from modalign.data.worlds.shapes import ShapesWorld
from modalign.data.worlds.shapes.grounding import denotes
from modalign.data.worlds.shapes.probes import ARO_ORDER_TYPES, PROBE_TYPES, SUGARCREPE_TYPES, is_true
from modalign.data.worlds.shapes.render import render
from modalign.data.worlds.shapes.vocab import COLORS, SHAPES, chair_synonyms, plural

PLURAL = {plural(s): s for s in SHAPES}


def _parse_objects(text):
    """(colour, shape) pairs mentioned with canonical words (synonyms mapped back)."""
    canon = {w: s for s, words in chair_synonyms().items() for w in words}
    found = []
    for m in re.finditer(r"(violet|turquoise|rose|" + "|".join(COLORS) + r") (\w+(?: sign)?)", text):
        color = {"violet": "purple", "turquoise": "cyan", "rose": "pink"}.get(m.group(1), m.group(1))
        found.append((color, canon.get(m.group(2), canon.get(m.group(2).split()[0]))))
    return found


def test_short_and_detailed_captions_name_exactly_the_scene_objects():
    for style in ("short", "detailed"):
        ds = ShapesWorld(task="caption", n=40, seed=1, caption=style, max_objects=4)
        for i in range(len(ds)):
            scene, text = ds.scene(i), ds.record(i)["text"]
            truth = {(o["color"], o["shape"]) for o in scene["objects"]}
            assert truth == {p for p in _parse_objects(text) if p[1] is not None}, text
            if style == "detailed":
                for o in scene["objects"]:
                    assert f"{o['size']} {o['color']} {o['shape']}" in text


def test_vqa_answers_recomputed_from_the_graph():
    ds = ShapesWorld(task="vqa", n=60, seed=2, max_objects=5)
    qtypes = set()
    for idx in range(len(ds)):
        item = ds.record(idx)
        objs = ds.scene(item["scene_index"])["objects"]
        q, a = item["question"], item["answer"]
        qtypes.add(item["qtype"])
        if m := re.fullmatch(r"Is there an? (\w+) (\w+) in the image\?", q):
            want = "yes" if any((o["color"], o["shape"]) == m.groups() for o in objs) else "no"
        elif m := re.fullmatch(r"How many (\w+) are there\?", q):
            w = m.group(1)
            want = str(len(objs) if w == "objects" else sum(o["shape"] == PLURAL[w] for o in objs))
        elif m := re.fullmatch(r"How many (\w+) objects are there\?", q):
            want = str(sum(o["color"] == m.group(1) for o in objs))
        elif m := re.fullmatch(r"What color is the (\w+)\?", q):
            (o,) = [o for o in objs if o["shape"] == m.group(1)]
            want = o["color"]
        elif m := re.fullmatch(r"What shape is the (\w+) object\?", q):
            (o,) = [o for o in objs if o["color"] == m.group(1)]
            want = o["shape"]
        elif m := re.fullmatch(r"Where is the (\w+) (\w+)\?", q):
            (o,) = [o for o in objs if (o["color"], o["shape"]) == m.groups()]
            want = o["position"]
        elif m := re.fullmatch(r"Is the (\w+) (\w+) (left of|right of|above|below) the (\w+) (\w+)\?", q):
            (i,) = [k for k, o in enumerate(objs) if (o["color"], o["shape"]) == m.groups()[:2]]
            (j,) = [k for k, o in enumerate(objs) if (o["color"], o["shape"]) == m.groups()[3:]]
            want = "yes" if [i, m.group(3), j] in ds.scene(item["scene_index"])["relations"] else "no"
        elif m := re.fullmatch(r"Is the (\w+) (\w+) (larger|smaller) than the (\w+) (\w+)\?", q):
            (a1,) = [o for o in objs if (o["color"], o["shape"]) == m.groups()[:2]]
            (b1,) = [o for o in objs if (o["color"], o["shape"]) == m.groups()[3:]]
            bigger = a1["size"] == "large" and b1["size"] == "small"
            smaller = a1["size"] == "small" and b1["size"] == "large"
            want = "yes" if (bigger if m.group(3) == "larger" else smaller) else "no"
        elif m := re.fullmatch(r"Are there more (\w+) than (\w+)\?", q):
            n1 = sum(o["shape"] == PLURAL[m.group(1)] for o in objs)
            n2 = sum(o["shape"] == PLURAL[m.group(2)] for o in objs)
            want = "yes" if n1 > n2 else "no"
        else:
            raise AssertionError(f"unparsed question {q!r}")
        assert a == want, (q, a, want)
    assert qtypes == {"existence", "count", "color", "shape", "position", "relation", "comparison"}


def test_instruct_conversations_are_llava_format():
    ds = ShapesWorld(task="instruct", n=10, seed=3)
    for i in range(len(ds)):
        convo = ds[i]["conversations"]
        assert convo[0]["value"].startswith("<image>\n")
        assert [t["from"] for t in convo] == ["human", "gpt"] * (len(convo) // 2)
        assert sum(t["value"].count("<image>") for t in convo) == 1
        assert any(t["value"].removeprefix("<image>\n").startswith(("Describe", "What is in")) for t in convo[::2])


def test_probe_positives_true_and_negatives_false():
    ds = ShapesWorld(task="probes", n=60, seed=4, max_objects=4)
    types = set()
    for idx in range(len(ds)):
        rec = ds.record(idx)
        scene = ds.scene(rec["scene_index"])
        d = rec["description"]
        desc = {"objects": [tuple(o) for o in d["objects"]], "relation": d["relation"]}
        assert is_true(desc, scene)
        texts = [n["text"] for n in rec["negatives"]]
        assert rec["positive"] not in texts
        for neg in rec["negatives"]:
            types.add(neg["type"])
            if neg["type"] in ARO_ORDER_TYPES:
                assert sorted(neg["text"].split()) == sorted(rec["positive"].split())
    assert types == set(PROBE_TYPES)
    assert set(SUGARCREPE_TYPES) <= types


def test_is_true_on_a_hand_built_scene():
    scene = {
        "objects": [
            {"color": "red", "shape": "circle", "size": "large"},
            {"color": "blue", "shape": "square", "size": "small"},
        ],
        "relations": [[0, "left of", 1], [1, "right of", 0]],
    }
    assert is_true(
        {"objects": [(None, "red", "circle"), (None, "blue", "square")], "relation": (0, "left of", 1)}, scene
    )
    assert not is_true(
        {"objects": [(None, "blue", "circle"), (None, "red", "square")], "relation": (0, "left of", 1)}, scene
    )
    assert not is_true({"objects": [("small", "red", "circle")], "relation": None}, scene)
    assert not is_true(
        {"objects": [(None, "red", "circle"), (None, "blue", "square")], "relation": (0, "right of", 1)}, scene
    )


def _relational(caption):
    m = re.fullmatch(r"an? (\w+) (\w+) (left of|right of|above|below) an? (\w+) (\w+)", caption)
    c1, s1, rel, c2, s2 = m.groups()
    return {"objects": [(None, c1, s1), (None, c2, s2)], "relation": (0, rel, 1)}


def test_winoground_pairs_same_words_each_true_of_its_own_image():
    ds = ShapesWorld(task="winoground", n=20, seed=5)
    for i in range(len(ds)):
        rec = ds.record(i)
        c0, c1 = rec["captions"]
        assert c0 != c1 and sorted(c0.split()) == sorted(c1.split())
        s0, s1 = rec["scenes"]
        d0, d1 = (_relational(c) for c in (c0, c1))
        assert is_true(d0, s0) and is_true(d1, s1)
        assert not is_true(d0, s1) and not is_true(d1, s0)
    item = ds[0]
    assert len(item["images"]) == 2 and item["images"][0].size == (64, 64)


def test_grounding_expression_denotes_one_object_and_its_box():
    ds = ShapesWorld(task="grounding", n=60, seed=6, max_objects=6)
    for i in range(len(ds)):
        rec = ds.record(i)
        scene = ds.scene(i)
        assert denotes(rec["reference"], scene) == [rec["index"]]
        assert rec["box"] == scene["objects"][rec["index"]]["box"]
        for word in ("color", "shape", "size"):
            if rec["reference"].get(word):
                assert rec["reference"][word] in rec["expression"]
        img = np.asarray(ds[i]["image"])
        x0, y0, x1, y1 = rec["box"]
        o = scene["objects"][rec["index"]]
        assert (img[y0:y1, x0:x1] == COLORS[o["color"]]).all(-1).any()


def test_chair_objects_and_vocabulary():
    ds = ShapesWorld(task="chair", n=10, seed=7)
    for i in range(len(ds)):
        assert ds[i]["objects"] == sorted({o["shape"] for o in ds.scene(i)["objects"]})
    syn = chair_synonyms()
    assert ds.vocabulary == syn  # what the chair suite reads from the dataset
    assert set(syn) == set(SHAPES) and "box" in syn["square"] and "disc" in syn["circle"]
    assert "crosses" in syn["cross"]
    assert len({w for words in syn.values() for w in words}) == sum(len(w) for w in syn.values())


def test_texts_cover_every_string():
    ds = ShapesWorld(task="probes", n=5, seed=8)
    texts = list(ds.texts())
    rec = ds.record(0)
    assert rec["positive"] in texts and all(n["text"] in texts for n in rec["negatives"])
    assert render(ds.scene(0)).mode == "RGB"


def test_instruct_mixes_short_answer_turns_with_exact_answers():
    from modalign.data.worlds.shapes.vqa import SHORT_ANSWER

    ds = ShapesWorld(task="instruct", n=40, seed=5)
    short = long = 0
    for i in range(len(ds)):
        convo = ds[i]["conversations"]
        for q, a in zip(convo[::2], convo[1::2]):
            if q["value"].endswith(SHORT_ANSWER):
                short += 1
                assert not a["value"].endswith(".") and len(a["value"].split()) <= 3  # the bare answer
            elif not q["value"].removeprefix("<image>\n").startswith(("Describe", "What is in")):
                long += 1
                assert a["value"].endswith(".")
    assert short > 10 and long > 10


def test_instruct_mix_is_configurable():
    from modalign.data.worlds.shapes.vqa import SHORT_ANSWER

    def turns(**kw):
        ds = ShapesWorld(task="instruct", n=30, seed=5, **kw)
        return [ds[i]["conversations"] for i in range(len(ds))]

    describe = ("Describe", "What is in")
    bare = turns(max_turns=8, short_p=1.0)
    for c in bare:
        humans = [q["value"].removeprefix("<image>\n") for q in c[::2]]
        questions = [q for q in humans if not q.startswith(describe)]
        assert len(questions) == len(humans) - 1  # one description per conversation
        assert all(q.endswith(SHORT_ANSWER) for q in questions)  # every VQA turn asks for the bare answer
    assert max(len(c) // 2 - 1 for c in bare) == 7  # one question per type the scene supports
    sentences = turns(max_turns=8, short_p=0.0)
    assert not any(q["value"].endswith(SHORT_ANSWER) for c in sentences for q in c[::2])
    assert all(len(c) // 2 <= 2 for c in turns(max_turns=2))  # one question and the description
    positions = {
        next(k for k, q in enumerate(c[::2]) if q["value"].removeprefix("<image>\n").startswith(describe))
        for c in turns()
    }
    assert len(positions) > 1  # the description is placed among the questions at random
    with pytest.raises(ValueError, match="short_p"):
        ShapesWorld(task="instruct", n=3, short_p=-0.1)


def test_detailed_descriptions_relate_each_object_to_its_nearest_neighbour():
    """A detailed description: an opening with the count, then one sentence per object in drawing order, naming its
    size, colour and shape, its place, and a true relation to its nearest neighbour (else "next to")."""
    from modalign.data.worlds.shapes.language import where_phrase
    from modalign.data.worlds.shapes.scenes import relations_between
    from modalign.data.worlds.shapes.vocab import number_word

    tail = re.compile(r", (left of|right of|above|below|next to) the (\w+) (\w+)\.$")
    world = ShapesWorld(task="caption", caption="detailed", n=40, seed=5, max_objects=5)
    related = 0
    for i in range(len(world)):
        scene, text = world.scene(i), world.record(i)["text"]
        objs = scene["objects"]
        opening, *said = re.split(r"(?<=\.) ", text)
        assert number_word(len(objs)) in opening and len(said) == len(objs), text
        for k, (s, obj) in enumerate(zip(said, objs)):
            assert f"{obj['size']} {obj['color']} {obj['shape']}" in s and where_phrase(obj["position"]) in s.lower()
            m, j = tail.search(s), scene["nearest"][k]
            if j < 0:
                assert m is None, s
                continue
            assert (m.group(2), m.group(3)) == (objs[j]["color"], objs[j]["shape"]), s
            rel = relations_between(obj, objs[j])
            assert m.group(1) in rel if rel else m.group(1) == "next to", (s, rel)
            related += 1
    assert related > 40
