"""Visual questions by type from a scene graph, and LLaVA-format conversations built from them.

Types: existence, count, color, shape, position, relation, comparison; and, only when asked for, object_at ("What
is in the top left?" -> "small red star", the place -> object lookup a description needs). Answers are single words
or short phrases ("yes", "3", "red", "top left") that are exact-match scorable after VQA normalisation. A question
only refers to an object by a phrase that picks out one object in the scene, so each answer is unambiguous.
"""

from __future__ import annotations

from collections import Counter

from .language import detailed_caption, where_phrase, with_article
from .vocab import COLOR_NAMES, INVERSE_RELATION, SHAPES, plural

QTYPES = ("existence", "count", "color", "shape", "position", "relation", "comparison")
# Asked only when questions_per_type names them (none by default, so default data and the VQA suite stay the same).
OPTIONAL_QTYPES = ("object_at",)
DESCRIBE_PROMPTS = ["Describe the image.", "Describe the image in detail.", "What is in this picture?"]


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def _unique_phrases(objs: list[dict]) -> list[int]:
    """Indices of objects whose "colour shape" phrase occurs once in the scene."""
    counts = Counter((o["color"], o["shape"]) for o in objs)
    return [k for k, o in enumerate(objs) if counts[(o["color"], o["shape"])] == 1]


# Question types that can be asked again about another object (or pair) of the same scene.
REPEATABLE = ("color", "shape", "position", "relation")


def check_per_type(per_type) -> dict:
    """{qtype: how many questions of that type a scene may give (default 1; 0 for OPTIONAL_QTYPES)}, validated."""
    per_type = dict(per_type or {})
    for qtype, k in per_type.items():
        if qtype not in REPEATABLE + OPTIONAL_QTYPES:
            raise ValueError(
                f"questions_per_type: {qtype!r} cannot be repeated or added; repeatable types are "
                f"{', '.join(REPEATABLE)}, optional ones {', '.join(OPTIONAL_QTYPES)}"
            )
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"questions_per_type.{qtype} is a number of questions, an integer >= 1; got {k!r}")
    return per_type


def _picks(rng, items, k: int) -> list:
    """k distinct items (as many as there are); k = 1 draws exactly as _pick does, so default data stays the same."""
    if k == 1:
        return [_pick(rng, items)]
    return [items[int(j)] for j in rng.permutation(len(items))[:k]]


def vqa_items(scene: dict, rng, mentionable=None, near_miss_p: float = 0.0, per_type=None) -> list[dict]:
    """One question per type that the scene supports: [{"question", "answer", "qtype"}, ...].

    `per_type` ({qtype: k}, REPEATABLE or OPTIONAL_QTYPES) asks up to k questions of a type, each about a different
    object (or pair): more of the training signal on the lookups a model finds hardest. Repeatable types not named
    give one, optional ones none; object_at asks only about places that hold one object, and comes last, so the
    other questions are drawn as without it.

    `mentionable`: the (colour, shape) pairs an existence question may ask about when the answer is "no" (default:
    all 64). A split passes the pairs it allows, so the training split never names a held-out composition: asked
    about one only ever with the answer "no", a model learns "red star -> no" from text alone and answers held-out
    objects from that prior instead of from the image. `near_miss_p`: the probability that an absent object asked
    about shares its colour or its shape with a present one (random absent objects mostly share neither, so "no"
    never needs the conjunction); 0 makes no extra random draw.
    """
    objs = scene["objects"]
    out = []
    phrases = {f"{o['color']} {o['shape']}" for o in objs}

    # existence: half the time a present object, otherwise an absent colour+shape
    if rng.random() < 0.5:
        out.append({"question": f"Is there {with_article(_pick(rng, sorted(phrases)))} in the image?", "answer": "yes"})
    else:
        pairs = mentionable if mentionable is not None else [(c, s) for c in COLOR_NAMES for s in SHAPES]
        absent = [f"{c} {s}" for c, s in pairs if f"{c} {s}" not in phrases]
        if near_miss_p > 0 and rng.random() < near_miss_p:
            # an absent object sharing its colour or its shape with a present one: "no" must check both
            colors, shapes = {o["color"] for o in objs}, {o["shape"] for o in objs}
            near = [p for p in absent if (p.split()[0] in colors) != (p.split()[1] in shapes)]
            absent = near or absent
        out.append({"question": f"Is there {with_article(_pick(rng, absent))} in the image?", "answer": "no"})
    out[-1]["qtype"] = "existence"

    kind = int(rng.integers(3))
    if kind == 0:
        shape = _pick(rng, SHAPES)
        q, a = f"How many {plural(shape)} are there?", sum(o["shape"] == shape for o in objs)
    elif kind == 1:
        color = _pick(rng, COLOR_NAMES)
        q, a = f"How many {color} objects are there?", sum(o["color"] == color for o in objs)
    else:
        q, a = "How many objects are there?", len(objs)
    out.append({"question": q, "answer": str(a), "qtype": "count"})

    shape_counts = Counter(o["shape"] for o in objs)
    per_type = per_type or {}
    lone_shapes = [o for o in objs if shape_counts[o["shape"]] == 1]
    if lone_shapes:
        for o in _picks(rng, lone_shapes, per_type.get("color", 1)):
            out.append({"question": f"What color is the {o['shape']}?", "answer": o["color"], "qtype": "color"})

    color_counts = Counter(o["color"] for o in objs)
    lone_colors = [o for o in objs if color_counts[o["color"]] == 1]
    if lone_colors:
        for o in _picks(rng, lone_colors, per_type.get("shape", 1)):
            out.append({"question": f"What shape is the {o['color']} object?", "answer": o["shape"], "qtype": "shape"})

    unique = _unique_phrases(objs)
    if unique:
        for k in _picks(rng, unique, per_type.get("position", 1)):
            o = objs[k]
            out.append(
                {"question": f"Where is the {o['color']} {o['shape']}?", "answer": o["position"], "qtype": "position"}
            )

    uset = set(unique)
    rels = [t for t in scene["relations"] if t[0] in uset and t[2] in uset]
    if rels:
        for i, r, j in _picks(rng, rels, per_type.get("relation", 1)):
            truth = rng.random() < 0.5
            asked = r if truth else INVERSE_RELATION[r]
            a, b = objs[i], objs[j]
            out.append(
                {
                    "question": f"Is the {a['color']} {a['shape']} {asked} the {b['color']} {b['shape']}?",
                    "answer": "yes" if truth else "no",
                    "qtype": "relation",
                }
            )

    pairs = [(i, j) for i in unique for j in unique if i != j and objs[i]["size"] != objs[j]["size"]]
    if pairs and rng.random() < 0.5:
        i, j = _pick(rng, pairs)
        a, b = objs[i], objs[j]
        word = _pick(rng, ["larger", "smaller"])
        ans = (a["size"] == "large") == (word == "larger")
        out.append(
            {
                "question": f"Is the {a['color']} {a['shape']} {word} than the {b['color']} {b['shape']}?",
                "answer": "yes" if ans else "no",
                "qtype": "comparison",
            }
        )
    else:
        present = sorted(shape_counts)
        s1 = _pick(rng, present)
        s2 = _pick(rng, [s for s in SHAPES if s != s1])
        ans = shape_counts[s1] > shape_counts.get(s2, 0)
        if rng.random() < 0.5:
            s1, s2, ans = s2, s1, shape_counts.get(s2, 0) > shape_counts[s1]
        out.append(
            {
                "question": f"Are there more {plural(s1)} than {plural(s2)}?",
                "answer": "yes" if ans else "no",
                "qtype": "comparison",
            }
        )

    if per_type.get("object_at"):  # optional: nothing computed or drawn unless asked for
        place_counts = Counter(o["position"] for o in objs)
        lone_places = [o for o in objs if place_counts[o["position"]] == 1]
        if lone_places:
            for o in _picks(rng, lone_places, per_type["object_at"]):
                out.append(
                    {
                        "question": f"What is {where_phrase(o['position'])}?",
                        "answer": f"{o['size']} {o['color']} {o['shape']}",
                        "qtype": "object_at",
                    }
                )
    return out


# LLaVA-1.5's instruction for benchmark-style answers: the model learns that this suffix asks for the bare answer,
# which is what VQA accuracy (exact match after normalisation) and POPE score. Eval prompts use the same suffix.
SHORT_ANSWER = "Answer with a single word or phrase."


DESCRIBE_AT = ("random", "first", "last", "alone")


def check_describe_at(describe_at: str) -> None:
    if describe_at not in DESCRIBE_AT:
        raise ValueError(
            f"describe_at places the description turn: one of {', '.join(DESCRIBE_AT)}; got {describe_at!r}"
        )


def conversation(
    scene: dict,
    rng,
    max_turns: int = 4,
    short_p: float = 0.5,
    mentionable=None,
    describe_p: float = 1.0,
    describe_at: str = "random",
    shape_first_p: float = 0.0,
    near_miss_p: float = 0.0,
    image_last_p: float = 0.0,
    per_type=None,
    describe_order: str = "drawn",
    where_first_p: float = 0.0,
    where_shape_first_p: float = 0.0,
    describe_relations: str = "nearest",
) -> list[dict]:
    """LLaVA-format turns: a few VQA pairs and one "Describe the image." turn, the first human turn led by <image>.

    Each VQA turn is, with probability `short_p`, asked with the SHORT_ANSWER suffix and answered with the bare
    answer ("red", "3", "top left"); otherwise answered in a sentence ("It is red."). `mentionable` as in vqa_items.
    With probability `describe_p` one turn asks for a detailed description (the long answer that names every object).
    `describe_at` places it: "random" (anywhere), "first", "last", or "alone" (the description is then the whole
    conversation). A description before a question lets the model answer it by copying from the text in context
    instead of reading the image; "last" and "alone" remove that shortcut, and "alone" also keeps the description the
    first turn, as the caption evaluation asks for it. `shape_first_p` as in detailed_caption, `near_miss_p` as in
    vqa_items. With probability `image_last_p` the image follows the first request ("What color is the star?\n<image>",
    an order LLaVA's data also holds): under causal attention every image token then sees the question, so each cell
    can check itself against it, instead of the answer having to find the cell among all of them; at 0 no extra random
    draw is made. `per_type` as in vqa_items (max_turns still caps the turns); `describe_order` is detailed_caption's
    `order`, `describe_relations` its `relations`, `where_first_p` and `where_shape_first_p` its own.
    """
    check_describe_at(describe_at)
    qa = vqa_items(scene, rng, mentionable, near_miss_p, per_type)
    order = [int(k) for k in rng.permutation(len(qa))][: max(0, max_turns - 1)]
    turns = []
    for k in order:
        if rng.random() < short_p:
            turns.append((f"{qa[k]['question']} {SHORT_ANSWER}", qa[k]["answer"]))
        else:
            turns.append((qa[k]["question"], _long_answer(qa[k])))
    if describe_p >= 1 or rng.random() < describe_p:  # describe_p = 1 keeps the random stream of earlier data
        describe = (
            _pick(rng, DESCRIBE_PROMPTS),
            detailed_caption(
                scene, rng, shape_first_p, describe_order, where_first_p, where_shape_first_p, describe_relations
            ),
        )
        where = int(rng.integers(len(turns) + 1))  # drawn in every mode: the rest of the stream stays the same
        if describe_at == "alone":
            turns = [describe]
        else:
            turns.insert({"random": where, "first": 0, "last": len(turns)}[describe_at], describe)
    image_last = image_last_p > 0 and rng.random() < image_last_p
    convo = []
    for k, (q, a) in enumerate(turns):
        if k == 0:
            q = (q + "\n<image>") if image_last else ("<image>\n" + q)
        convo.append({"from": "human", "value": q})
        convo.append({"from": "gpt", "value": a})
    return convo


def _long_answer(item: dict) -> str:
    """A short sentence around the exact answer (instruction data reads better with sentences)."""
    a = item["answer"]
    if a in ("yes", "no"):
        return a.capitalize() + "."
    if item["qtype"] == "count":
        return "There are none." if a == "0" else f"There {'is' if a == '1' else 'are'} {a}."
    if item["qtype"] == "position":
        return f"It is {where_phrase(a)}."
    if item["qtype"] == "object_at":
        return f"It is {with_article(a)}."
    return f"It is {a}."
