"""Visual questions by type from a scene graph, and LLaVA-format conversations built from them.

Types: existence, count, color, shape, position, relation, comparison. Answers are single words or short phrases
("yes", "3", "red", "top left") that are exact-match scorable after VQA normalisation. A question only refers to an
object by a phrase that picks out one object in the scene, so each answer is unambiguous.
"""

from __future__ import annotations

from collections import Counter

from .language import detailed_caption, where_phrase, with_article
from .vocab import COLOR_NAMES, INVERSE_RELATION, SHAPES, plural

QTYPES = ("existence", "count", "color", "shape", "position", "relation", "comparison")
DESCRIBE_PROMPTS = ["Describe the image.", "Describe the image in detail.", "What is in this picture?"]


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def _unique_phrases(objs: list[dict]) -> list[int]:
    """Indices of objects whose "colour shape" phrase occurs once in the scene."""
    counts = Counter((o["color"], o["shape"]) for o in objs)
    return [k for k, o in enumerate(objs) if counts[(o["color"], o["shape"])] == 1]


def vqa_items(scene: dict, rng, mentionable=None) -> list[dict]:
    """One question per type that the scene supports: [{"question", "answer", "qtype"}, ...].

    `mentionable`: the (colour, shape) pairs an existence question may ask about when the answer is "no" (default:
    all 64). A split passes the pairs it allows, so the training split never names a held-out composition: asked
    about one only ever with the answer "no", a model learns "red star -> no" from text alone and answers held-out
    objects from that prior instead of from the image.
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
    lone_shapes = [o for o in objs if shape_counts[o["shape"]] == 1]
    if lone_shapes:
        o = _pick(rng, lone_shapes)
        out.append({"question": f"What color is the {o['shape']}?", "answer": o["color"], "qtype": "color"})

    color_counts = Counter(o["color"] for o in objs)
    lone_colors = [o for o in objs if color_counts[o["color"]] == 1]
    if lone_colors:
        o = _pick(rng, lone_colors)
        out.append({"question": f"What shape is the {o['color']} object?", "answer": o["shape"], "qtype": "shape"})

    unique = _unique_phrases(objs)
    if unique:
        o = objs[_pick(rng, unique)]
        out.append(
            {"question": f"Where is the {o['color']} {o['shape']}?", "answer": o["position"], "qtype": "position"}
        )

    uset = set(unique)
    rels = [t for t in scene["relations"] if t[0] in uset and t[2] in uset]
    if rels:
        i, r, j = _pick(rng, rels)
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

    return out


# LLaVA-1.5's instruction for benchmark-style answers: the model learns that this suffix asks for the bare answer,
# which is what VQA accuracy (exact match after normalisation) and POPE score. Eval prompts use the same suffix.
SHORT_ANSWER = "Answer with a single word or phrase."


def conversation(scene: dict, rng, max_turns: int = 4, short_p: float = 0.5, mentionable=None) -> list[dict]:
    """LLaVA-format turns: a few VQA pairs and one "Describe the image." turn, the first human turn led by <image>.

    Up to `max_turns - 1` VQA turns, each asked with probability `short_p` with the SHORT_ANSWER suffix and answered
    with the bare answer ("red", "3", "top left"), otherwise answered in a sentence ("It is red."); the describe turn,
    answered by detailed_caption, goes at a random place among them. `mentionable` as in vqa_items.
    """
    qa = vqa_items(scene, rng, mentionable)
    order = [int(k) for k in rng.permutation(len(qa))][: max(0, max_turns - 1)]
    turns = []
    for k in order:
        if rng.random() < short_p:
            turns.append((f"{qa[k]['question']} {SHORT_ANSWER}", qa[k]["answer"]))
        else:
            turns.append((qa[k]["question"], _long_answer(qa[k])))
    describe = (_pick(rng, DESCRIBE_PROMPTS), detailed_caption(scene, rng))
    turns.insert(int(rng.integers(len(turns) + 1)), describe)
    convo = []
    for k, (q, a) in enumerate(turns):
        convo.append({"from": "human", "value": ("<image>\n" + q) if k == 0 else q})
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
    return f"It is {a}."
