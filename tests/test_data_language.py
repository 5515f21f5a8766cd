"""Language derived from shapes scenes is true of them: captions, VQA answers, probes, Winoground, grounding."""

import re
from collections import Counter

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
    qa_only = turns(max_turns=8, short_p=1.0, describe_p=0.0)
    questions = [q["value"].removeprefix("<image>\n") for c in qa_only for q in c[::2]]
    assert all(q.endswith(SHORT_ANSWER) for q in questions)  # every VQA turn asks for the bare answer
    assert not any(q.startswith(describe) for q in questions)
    assert max(len(c) // 2 for c in qa_only) == 7  # one question per type the scene supports
    always = turns()  # the default keeps one description per conversation
    assert all(sum(q["value"].removeprefix("<image>\n").startswith(describe) for q in c[::2]) == 1 for c in always)
    with pytest.raises(ValueError, match="describe_p"):
        ShapesWorld(task="instruct", n=3, describe_p=1.5)
    with pytest.raises(ValueError, match="describe_at"):
        ShapesWorld(task="instruct", n=3, describe_at="middle")
    with pytest.raises(ValueError, match="short_p"):
        ShapesWorld(task="instruct", n=3, short_p=-0.1)


def test_describe_turn_placement():
    """describe_at moves the description turn and leaves every other turn as it was."""
    describe = ("Describe", "What is in")

    def convos(at):
        ds = ShapesWorld(task="instruct", n=40, seed=2, describe_at=at)
        return [ds[i]["conversations"] for i in range(len(ds))]

    def split(convo):
        humans = [q["value"].removeprefix("<image>\n") for q in convo[::2]]
        k = next(j for j, q in enumerate(humans) if q.startswith(describe))
        pairs = [(q, a["value"]) for q, a in zip(humans, convo[1::2])]
        return k, pairs[k], pairs[:k] + pairs[k + 1 :]

    rand, last, first = convos("random"), convos("last"), convos("first")
    positions = []
    for r, la, f in zip(rand, last, first):
        kr, dr, qr = split(r)
        kl, dl, ql = split(la)
        kf, df, qf = split(f)
        positions.append(kr)
        assert kl == len(la) // 2 - 1 and kf == 0
        assert dr == dl == df and qr == ql == qf  # same turns, only the description moved
        assert la[0]["value"].startswith("<image>\n") and f[0]["value"].startswith("<image>\n")
    assert len(set(positions)) > 1  # "random" does place it in several positions
    alone = ShapesWorld(task="instruct", n=40, seed=2, describe_at="alone", describe_p=0.5)
    kinds = [
        tuple(q["value"].removeprefix("<image>\n").startswith(describe) for q in alone[i]["conversations"][::2])
        for i in range(len(alone))
    ]
    assert (True,) in kinds  # a description alone ...
    assert any(len(k) > 1 and not any(k) for k in kinds)  # ... or questions without one, never both
    assert all(k == (True,) or not any(k) for k in kinds)


def test_shape_first_descriptions_state_the_same_facts():
    """shape_first_p names the shape first ("The star ... is large and red"); at 0 the data is unchanged."""
    from modalign.data.worlds.shapes.language import detailed_caption

    plain = ShapesWorld(task="instruct", n=20, seed=4)
    same = ShapesWorld(task="instruct", n=20, seed=4, shape_first_p=0.0)
    assert all(plain[i]["conversations"] == same[i]["conversations"] for i in range(20))
    world = ShapesWorld(task="caption", n=30, seed=4)
    shape_first = 0
    for i in range(30):
        scene = world.scene(i)
        text = detailed_caption(scene, np.random.default_rng(i), shape_first_p=1.0)
        for obj in scene["objects"]:  # every object's sentence names its shape, colour and size
            sentence = next(
                s
                for s in text.split(". ")
                if obj["shape"] in s.split(",")[0].split(";")[0] and obj["color"] in s and obj["size"] in s
            )
            assert sentence.index(obj["shape"]) < sentence.index(obj["color"])
            shape_first += 1
        assert "Describe" not in text
    assert shape_first > 30
    with pytest.raises(ValueError, match="shape_first_p"):
        ShapesWorld(task="instruct", n=3, shape_first_p=2)


def test_near_miss_absent_objects_share_colour_or_shape():
    """near_miss_p: a "no" existence question asks about an object one attribute away from a present one."""
    world = ShapesWorld(task="instruct", n=150, seed=3, near_miss_p=1.0)
    near = 0
    for i in range(len(world)):
        objs = world.scene(i)["objects"]
        colors, shapes = {o["color"] for o in objs}, {o["shape"] for o in objs}
        for q, a in zip(world[i]["conversations"][::2], world[i]["conversations"][1::2]):
            m = re.fullmatch(r"Is there an? (\w+) (\w+) in the image\?.*", q["value"].removeprefix("<image>\n"))
            if m and a["value"].lower().startswith("no"):
                color, shape = m.groups()
                assert (color, shape) not in {(o["color"], o["shape"]) for o in objs}
                assert (color in colors) != (shape in shapes)
                assert (color, shape) in world.rule.allowed  # the training split still never names a held-out pair
                near += 1
    assert near > 10
    plain = ShapesWorld(task="instruct", n=20, seed=3)
    assert all(plain[i] == ShapesWorld(task="instruct", n=20, seed=3, near_miss_p=0.0)[i] for i in range(20))
    with pytest.raises(ValueError, match="near_miss_p"):
        ShapesWorld(task="instruct", n=3, near_miss_p=-1)


def test_image_last_puts_the_image_after_the_first_request_only():
    """image_last_p moves the <image> marker behind the first human turn's text; 0 keeps the data byte for byte."""
    plain = ShapesWorld(task="instruct", n=20, seed=5)
    same = ShapesWorld(task="instruct", n=20, seed=5, image_last_p=0.0)
    assert all(plain[i]["conversations"] == same[i]["conversations"] for i in range(20))
    last = ShapesWorld(task="instruct", n=20, seed=5, image_last_p=1.0)
    for i in range(20):
        a, b = plain[i]["conversations"], last[i]["conversations"]
        assert [t["value"] for t in a[1:]] == [t["value"] for t in b[1:]]  # the rest of the stream is unchanged
        assert a[0]["value"].startswith("<image>\n")
        assert b[0]["value"] == a[0]["value"][len("<image>\n") :] + "\n<image>"
        assert sum(t["value"].count("<image>") for t in b) == 1
    with pytest.raises(ValueError, match="image_last_p"):
        ShapesWorld(task="instruct", n=3, image_last_p=-0.1)


def test_questions_per_type_asks_again_about_other_objects():
    """questions_per_type: up to k questions of a type per scene, each about another object; 1 keeps the data."""
    k = {"position": 3, "relation": 2, "color": 2}
    world = ShapesWorld(task="instruct", n=80, seed=4, max_turns=30, describe_p=0.0, questions_per_type=k)
    many = 0
    for i in range(len(world)):
        scene = world.scene(i)
        objs = scene["objects"]
        phrases = Counter((o["color"], o["shape"]) for o in objs)
        lone_shapes = [s for s, n in Counter(o["shape"] for o in objs).items() if n == 1]
        turns = world[i]["conversations"]
        asked = {"position": [], "relation": 0, "color": []}
        for q, a in zip(turns[::2], turns[1::2]):
            text = q["value"].removeprefix("<image>\n").removesuffix(" Answer with a single word or phrase.")
            if m := re.fullmatch(r"Where is the (\w+) (\w+)\?", text):
                (o,) = [o for o in objs if (o["color"], o["shape"]) == m.groups()]
                assert o["position"] in a["value"]
                asked["position"].append(m.groups())
            elif re.fullmatch(r"Is the \w+ \w+ (left of|right of|above|below) the \w+ \w+\?", text):
                asked["relation"] += 1
            elif m := re.fullmatch(r"What color is the (\w+)\?", text):
                asked["color"].append(m.group(1))
        unique = [p for p, n in phrases.items() if n == 1]
        assert len(asked["position"]) == len(set(asked["position"])) == min(3, len(unique))
        assert len(asked["color"]) == len(set(asked["color"])) == min(2, len(lone_shapes))
        uset = {j for j, o in enumerate(objs) if phrases[(o["color"], o["shape"])] == 1}
        rels = [t for t in scene["relations"] if t[0] in uset and t[2] in uset]
        assert asked["relation"] == min(2, len(rels))
        many += len(asked["position"]) > 1
    assert many > 20
    vqa = ShapesWorld(task="vqa", n=40, seed=4, questions_per_type={"position": 3})
    per_scene = Counter(vqa.record(i)["scene_index"] for i in range(len(vqa)) if vqa.record(i)["qtype"] == "position")
    assert max(per_scene.values()) == 3
    assert all(
        vqa.record(i) == ShapesWorld(task="vqa", n=40, seed=4).record(i)
        for i in range(3)
        if vqa.record(i)["qtype"] in ("existence", "count")
    )  # before the repeats: as ever
    plain = ShapesWorld(task="instruct", n=20, seed=4, max_turns=8)
    ones = ShapesWorld(
        task="instruct",
        n=20,
        seed=4,
        max_turns=8,
        questions_per_type={"position": 1, "relation": 1, "color": 1, "shape": 1},
    )
    assert all(plain[i] == ones[i] for i in range(20))
    for bad, match in [
        ({"count": 2}, "cannot be repeated"),
        ({"position": 0}, "integer >= 1"),
        ({"relation": "2"}, "integer >= 1"),
    ]:
        with pytest.raises(ValueError, match=match):
            ShapesWorld(task="instruct", n=3, questions_per_type=bad)


def test_reading_order_descriptions_name_objects_row_by_row():
    """describe_order="reading": the same sentences' facts, objects named top to bottom, left to right in thirds."""
    rows = {"top": 0, "bottom": 2}
    cols = {"left": 0, "right": 2}
    reading = ShapesWorld(task="instruct", n=60, seed=6, describe_at="first", describe_order="reading")
    captions = ShapesWorld(task="caption", n=60, seed=6, caption="detailed", describe_order="reading")
    checked = 0
    for world, text_of in ((reading, lambda r: r["conversations"][1]["value"]), (captions, lambda r: r["text"])):
        for i in range(len(world)):
            objs = world.scene(i)["objects"]
            text = text_of(world[i])
            # where each object's own sentence starts: its size-colour-shape phrase, or its shape-first opening
            starts = sorted(
                (text.index(f"{o['size']} {o['color']} {o['shape']}"), o)
                for o in objs
                if f"{o['size']} {o['color']} {o['shape']}" in text
            )
            if len(starts) != len(objs):
                continue  # a phrase repeated by two objects: order not readable from the text
            cells = [(rows.get(o["position"].split()[0], 1), cols.get(o["position"].split()[-1], 1)) for _, o in starts]
            assert cells == sorted(cells), text
            checked += len(objs) > 1
    assert checked > 40
    drawn = ShapesWorld(task="instruct", n=20, seed=6)
    same = ShapesWorld(task="instruct", n=20, seed=6, describe_order="drawn")
    assert all(drawn[i] == same[i] for i in range(20))
    assert any(ShapesWorld(task="instruct", n=20, seed=6, describe_order="reading")[i] != drawn[i] for i in range(20))
    with pytest.raises(ValueError, match="describe_order"):
        ShapesWorld(task="instruct", n=3, describe_order="random")


def test_where_first_descriptions_state_the_same_facts_place_first():
    """where_first_p=1: every object's sentence opens with its place, then its size-colour-shape phrase; at 0 the
    data is unchanged (no extra random draw), in instruct turns and detailed captions alike."""
    from modalign.data.worlds.shapes.language import detailed_caption, where_phrase

    plain = ShapesWorld(task="instruct", n=20, seed=8, describe_order="reading")
    same = ShapesWorld(task="instruct", n=20, seed=8, describe_order="reading", where_first_p=0.0)
    assert all(plain[i] == same[i] for i in range(20))
    world = ShapesWorld(task="caption", n=30, seed=8)
    checked = 0
    for i in range(30):
        scene = world.scene(i)
        text = detailed_caption(scene, np.random.default_rng(i), shape_first_p=1.0, where_first_p=1.0)
        sentences = text.split(". ")[1:]  # after the opening
        assert len(sentences) == len(scene["objects"])
        for sentence, obj in zip(sentences, scene["objects"]):  # drawing order
            where = where_phrase(obj["position"])
            assert sentence.startswith(where[0].upper() + where[1:]), sentence
            # the object's own phrase is the first one after the place (a relation's neighbour comes later)
            after_place = sentence[len(where) :]
            assert (
                after_place.index(f"{obj['size']} {obj['color']} {obj['shape']}") < after_place.find(" the ")
                or " the " not in after_place
            ), sentence
            checked += 1
    assert checked > 60
    turns = ShapesWorld(task="instruct", n=10, seed=8, describe_at="alone", where_first_p=1.0)
    for i in range(10):
        first = turns[i]["conversations"][1]["value"].split(". ")[1]
        obj = turns.scene(i)["objects"][0]
        assert first.lower().startswith(where_phrase(obj["position"]))
    captions = ShapesWorld(task="caption", n=10, seed=8, caption="detailed", where_first_p=1.0)
    for i in range(10):
        first = captions[i]["text"].split(". ")[1]
        obj = captions.scene(i)["objects"][0]
        assert first.lower().startswith(where_phrase(obj["position"]))
    with pytest.raises(ValueError, match="where_first_p"):
        ShapesWorld(task="instruct", n=3, where_first_p=1.5)


def test_where_shape_first_sentences_read_the_shape_before_its_colour():
    """where_shape_first_p=1 with place-first sentences: place, then "a/an <shape>", then the object's size and colour
    (no colour word between place and shape); at 0, or without place-first sentences, the data is unchanged."""
    from modalign.data.worlds.shapes.language import detailed_caption, reading_order, where_phrase
    from modalign.data.worlds.shapes.vocab import COLOR_NAMES

    world = ShapesWorld(task="caption", n=30, seed=9)
    checked = 0
    for i in range(30):
        scene = world.scene(i)
        text = detailed_caption(
            scene, np.random.default_rng(i), order="reading", where_first_p=1.0, where_shape_first_p=1.0
        )
        sentences = text.split(". ")[1:]
        assert len(sentences) == len(scene["objects"])
        named = []
        for sentence, k in zip(sentences, reading_order(scene["objects"])):
            obj = scene["objects"][k]
            where = where_phrase(obj["position"])
            assert sentence.startswith(where[0].upper() + where[1:]), sentence
            own = sentence[len(where) :].split(" the ")[0]  # before a relation's neighbour
            assert f"a {obj['shape']}" in own or f"an {obj['shape']}" in own, sentence
            before_shape = own[: own.index(f" {obj['shape']}")]
            assert not any(c in before_shape.split() for c in COLOR_NAMES), sentence
            assert obj["color"] in own and obj["size"] in own, sentence
            named.append(obj["shape"])
            checked += 1
        assert sorted(named) == sorted(o["shape"] for o in scene["objects"])
    assert checked > 60
    for kw in ({"where_first_p": 1.0}, {"where_first_p": 0.0, "shape_first_p": 0.5}):
        plain = ShapesWorld(task="instruct", n=15, seed=9, describe_order="reading", **kw)
        same = ShapesWorld(task="instruct", n=15, seed=9, describe_order="reading", where_shape_first_p=0.0, **kw)
        assert all(plain[i] == same[i] for i in range(15))
    unused = ShapesWorld(task="instruct", n=15, seed=9, where_shape_first_p=1.0)  # no place-first sentences
    assert all(unused[i] == ShapesWorld(task="instruct", n=15, seed=9)[i] for i in range(15))
    turns = ShapesWorld(task="instruct", n=10, seed=9, describe_at="alone", where_first_p=1.0, where_shape_first_p=1.0)
    for i in range(10):
        obj = turns.scene(i)["objects"][0]
        first = turns[i]["conversations"][1]["value"].split(". ")[1]
        assert first.lower().startswith(where_phrase(obj["position"]))
    with pytest.raises(ValueError, match="where_shape_first_p"):
        ShapesWorld(task="instruct", n=3, where_shape_first_p=-0.1)


def test_object_at_questions_name_the_one_object_at_a_place():
    """object_at ("What is in the top left?" -> "small red star"): only when asked for, only about places holding one
    object, answered with that object; the other questions are drawn exactly as without it."""
    from modalign.data.worlds.shapes.language import where_phrase
    from modalign.data.worlds.shapes.vqa import _long_answer, vqa_items

    asked = 0
    for i in range(60):
        scene = ShapesWorld(task="vqa", n=60, seed=5).scene(i)
        with_at = vqa_items(scene, np.random.default_rng(i), per_type={"object_at": 2})
        without = vqa_items(scene, np.random.default_rng(i))
        assert [q for q in with_at if q["qtype"] != "object_at"] == without
        assert all(q["qtype"] != "object_at" for q in without)
        places = Counter(o["position"] for o in scene["objects"])
        at = [q for q in with_at if q["qtype"] == "object_at"]
        assert len(at) == min(2, sum(v == 1 for v in places.values()))
        assert len({q["question"] for q in at}) == len(at)
        for q in at:
            (obj,) = [o for o in scene["objects"] if q["question"] == f"What is {where_phrase(o['position'])}?"]
            assert places[obj["position"]] == 1
            assert q["answer"] == f"{obj['size']} {obj['color']} {obj['shape']}"
            assert _long_answer(q) in (f"It is a {q['answer']}.", f"It is an {q['answer']}.")
            asked += 1
    assert asked > 60
    vqa = ShapesWorld(task="vqa", n=20, seed=5, questions_per_type={"object_at": 1})
    assert any(vqa.record(i)["qtype"] == "object_at" for i in range(len(vqa)))
    plain = ShapesWorld(task="vqa", n=20, seed=5)
    assert all(plain.record(i)["qtype"] != "object_at" for i in range(len(plain)))
    with pytest.raises(ValueError, match="optional ones object_at"):
        ShapesWorld(task="instruct", n=3, questions_per_type={"where": 1})


def test_numbered_descriptions_are_reading_order_sentences_opened_by_ordinals():
    """describe_order="numbered": the reading-order description, each object's sentence prefixed by its ordinal."""

    def text_of(record):
        return record["text"] if "text" in record else record["conversations"][-1]["value"]

    for kw in ({"task": "caption", "caption": "detailed"}, {"task": "instruct", "describe_at": "alone"}):
        reading = ShapesWorld(n=40, seed=3, describe_order="reading", where_first_p=0.5, **kw)
        numbered = ShapesWorld(n=40, seed=3, describe_order="numbered", where_first_p=0.5, **kw)
        for i in range(len(reading)):
            plain = re.split(r"(?<=\.) ", text_of(reading[i]))
            marked = re.split(r"(?<=\.) ", text_of(numbered[i]))
            n = len(reading.scene(i)["objects"])
            assert len(plain) == len(marked) == n + 1, marked
            assert marked[0] == plain[0]  # the opening with the count is untouched
            for k in range(1, n + 1):
                ordinal = ("First", "Second", "Third", "Fourth")[k - 1]
                assert marked[k] == f"{ordinal}, {plain[k][0].lower()}{plain[k][1:]}", (marked[k], plain[k])
    crowded = ShapesWorld(
        task="caption",
        caption="detailed",
        n=1,
        min_objects=11,
        max_objects=11,
        image_size=400,
        max_overlap=0.5,
        describe_order="numbered",
    )
    sentences = re.split(r"(?<=\.) ", crowded[0]["text"])
    assert [x.split(",")[0] for x in sentences[1:]] == [
        "First",
        "Second",
        "Third",
        "Fourth",
        "Fifth",
        "Sixth",
        "Seventh",
        "Eighth",
        "Ninth",
        "Tenth",
        "Next",
    ]


def test_describe_relations_earlier_relates_each_sentence_to_an_object_already_described():
    """describe_relations="earlier": a sentence's relation names the nearest object among those already described
    (the first sentence none), so no object's colour and shape are written before its own sentence; "none": no
    relation at all; "nearest" is the default; anything else is refused."""
    from modalign.data.worlds.shapes.language import reading_order
    from modalign.data.worlds.shapes.scenes import relations_between

    tail = re.compile(r", (left of|right of|above|below|next to) the (\w+) (\w+)\.$")
    kw = {"task": "instruct", "describe_at": "alone", "describe_order": "reading", "where_first_p": 0.5}
    earlier = ShapesWorld(n=60, seed=5, describe_relations="earlier", **kw)
    bare = ShapesWorld(n=60, seed=5, describe_relations="none", **kw)
    tails = 0
    for i in range(len(earlier)):
        objs = earlier.scene(i)["objects"]
        order = reading_order(objs)
        said = re.split(r"(?<=\.) ", earlier[i]["conversations"][-1]["value"])[1:]
        plain = re.split(r"(?<=\.) ", bare[i]["conversations"][-1]["value"])[1:]
        assert len(said) == len(plain) == len(objs)
        assert not any(tail.search(s) for s in plain), plain
        for k, (s, b, o) in enumerate(zip(said, plain, order)):
            obj = objs[o]
            assert f"{obj['size']} {obj['color']} {obj['shape']}" in s and f"{obj['color']} {obj['shape']}" in b
            m = tail.search(s)
            if k == 0:
                assert m is None, s
                continue
            dist = [np.hypot(*np.subtract(objs[j]["center"], obj["center"])) for j in order[:k]]
            j = order[int(np.argmin(dist))]
            assert m is not None and (m.group(2), m.group(3)) == (objs[j]["color"], objs[j]["shape"]), s
            rel = relations_between(obj, objs[j])
            assert m.group(1) in rel if rel else m.group(1) == "next to", (s, rel)
            tails += 1
        # each object's colour and shape come first in its own sentence (where the scene has that pair once)
        text = " ".join(said)
        for k, o in enumerate(order):
            pair = f"{objs[o]['color']} {objs[o]['shape']}"
            if sum(f"{x['color']} {x['shape']}" == pair for x in objs) == 1:
                assert text.index(pair) >= len(" ".join(said[:k])), (pair, text)
    assert tails > 60
    same = ShapesWorld(n=30, seed=5, **kw)
    nearest = ShapesWorld(n=30, seed=5, describe_relations="nearest", **kw)
    assert all(same[i] == nearest[i] for i in range(30))
    captions = ShapesWorld(task="caption", caption="detailed", n=10, seed=5, describe_relations="none")
    assert not any(tail.search(s) for i in range(10) for s in re.split(r"(?<=\.) ", captions[i]["text"]))
    with pytest.raises(ValueError, match="describe_relations"):
        ShapesWorld(task="instruct", n=3, describe_relations="previous")
