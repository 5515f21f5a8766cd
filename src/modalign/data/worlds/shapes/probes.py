"""Compositional probes: SugarCrepe-style hard negatives, ARO order shuffles, and Winoground-style scene pairs.

Captions are built from a structured description {"objects": [(size|None, colour, shape), ...], "relation":
(0, rel, 1) | None}, and `is_true(desc, scene)` checks one against a scene graph, so every positive is verified true
and every replace/swap/add negative verified false (a candidate that happens to be true is dropped). Order shuffles
(ARO) permute the words of the positive and only need to differ from it.
"""

from __future__ import annotations

from itertools import permutations

from .language import join_list, with_article
from .scenes import layout_scene
from .vocab import COLOR_NAMES, COLORS, INVERSE_RELATION, SHAPES, SIZES

SUGARCREPE_TYPES = ("replace-obj", "replace-att", "replace-rel", "swap-obj", "swap-att", "add-obj", "add-att")
ARO_ORDER_TYPES = ("shuffle-nouns-adjs", "shuffle-allbut-nouns-adjs", "shuffle-within-trigrams", "shuffle-trigrams")
PROBE_TYPES = SUGARCREPE_TYPES + ARO_ORDER_TYPES
_CONTENT = set(SHAPES) | set(COLORS) | set(SIZES)  # nouns and adjectives of the world


def describe(desc: dict) -> str:
    phrases = [with_article(" ".join(w for w in o if w)) for o in desc["objects"]]
    rel = desc.get("relation")
    if rel is None:
        return join_list(phrases)
    head = f"{phrases[0]} {rel[1]} {phrases[1]}"
    return head + (" and " + join_list(phrases[2:]) if len(phrases) > 2 else "")


def _matches(ref, obj) -> bool:
    size, color, shape = ref
    return obj["color"] == color and obj["shape"] == shape and (size is None or obj["size"] == size)


def is_true(desc: dict, scene: dict) -> bool:
    """Some distinct scene objects match the described ones and (if given) stand in the stated relation."""
    objs, refs, rel = scene["objects"], desc["objects"], desc.get("relation")
    rels = {(i, r, j) for i, r, j in scene["relations"]}
    for assign in permutations(range(len(objs)), len(refs)):
        matched = all(_matches(ref, objs[k]) for ref, k in zip(refs, assign))
        if matched and (rel is None or (assign[rel[0]], rel[1], assign[rel[2]]) in rels):
            return True
    return False


def _pick(rng, items):
    return items[int(rng.integers(len(items)))]


def positive_description(scene: dict, rng) -> dict:
    """A true two-object description, with a relation when the scene has one."""
    objs = scene["objects"]
    if scene["relations"]:
        i, r, j = _pick(rng, scene["relations"])
        return {
            "objects": [(None, objs[i]["color"], objs[i]["shape"]), (None, objs[j]["color"], objs[j]["shape"])],
            "relation": (0, r, 1),
        }
    ks = [int(k) for k in rng.permutation(len(objs))[:2]]
    return {"objects": [(None, objs[k]["color"], objs[k]["shape"]) for k in ks], "relation": None}


def _edit(desc, k, size=None, color=None, shape=None):
    objects = list(desc["objects"])
    s, c, h = objects[k]
    objects[k] = (size if size is not None else s, color or c, shape or h)
    return {"objects": objects, "relation": desc["relation"]}


def sugarcrepe_negatives(desc: dict, scene: dict, rng) -> list[dict]:
    """[{"type", "text"}]: one verified-false negative per SugarCrepe type that applies."""
    refs = desc["objects"]
    present = {(o["color"], o["shape"]) for o in scene["objects"]}
    k = int(rng.integers(len(refs)))
    cands = {
        "replace-obj": _edit(desc, k, shape=_pick(rng, [s for s in SHAPES if s != refs[k][2]])),
        "replace-att": _edit(desc, k, color=_pick(rng, [c for c in COLOR_NAMES if c != refs[k][1]])),
        "swap-obj": {
            "objects": [(None, refs[0][1], refs[1][2]), (None, refs[1][1], refs[0][2])] + refs[2:],
            "relation": desc["relation"],
        },
        "swap-att": {
            "objects": [(None, refs[1][1], refs[0][2]), (None, refs[0][1], refs[1][2])] + refs[2:],
            "relation": desc["relation"],
        },
        # Either size word may be the false one; both are tried below.
        "add-att": [_edit(desc, k, size=z) for z in (SIZES if rng.random() < 0.5 else SIZES[::-1])],
    }
    if desc["relation"] is not None:
        i, r, j = desc["relation"]
        cands["replace-rel"] = {"objects": refs, "relation": (i, INVERSE_RELATION[r], j)}
    absent = [(c, s) for c in COLOR_NAMES for s in SHAPES if (c, s) not in present]
    if absent:
        c, s = _pick(rng, absent)
        cands["add-obj"] = {"objects": refs + [(None, c, s)], "relation": desc["relation"]}
    positive = describe(desc)
    out = []
    for t in SUGARCREPE_TYPES:
        options = cands.get(t, [])
        for cand in options if isinstance(options, list) else [options]:
            if not is_true(cand, scene) and describe(cand) != positive:
                out.append({"type": t, "text": describe(cand)})
                break
    return out


def order_shuffles(text: str, rng, tries: int = 20) -> list[dict]:
    """ARO's four word-order perturbations of a caption (each kept only if it differs from the original)."""
    words = text.split()
    out = []
    for t in ARO_ORDER_TYPES:
        for _ in range(tries):
            w = list(words)
            if t in ("shuffle-nouns-adjs", "shuffle-allbut-nouns-adjs"):
                want = t == "shuffle-nouns-adjs"
                pos = [k for k, x in enumerate(w) if (x in _CONTENT) == want]
                for k, src in zip(pos, rng.permutation(pos)):
                    w[k] = words[int(src)]
            else:
                tri = [w[k : k + 3] for k in range(0, len(w), 3)]
                if t == "shuffle-within-trigrams":
                    tri = [[g[int(j)] for j in rng.permutation(len(g))] for g in tri]
                else:
                    tri = [tri[int(j)] for j in rng.permutation(len(tri))]
                w = [x for g in tri for x in g]
            if w != words:
                out.append({"type": t, "text": " ".join(w)})
                break
    return out


def probe(scene: dict, rng) -> dict:
    """{"positive", "negatives": [{"type", "text"}], "description"} for one scene."""
    desc = positive_description(scene, rng)
    positive = describe(desc)
    negatives = sugarcrepe_negatives(desc, scene, rng) + order_shuffles(positive, rng)
    return {
        "positive": positive,
        "negatives": negatives,
        "description": {
            "objects": [list(o) for o in desc["objects"]],
            "relation": list(desc["relation"]) if desc["relation"] else None,
        },
    }


def winoground_pair(rng, rule, image_size: int, max_overlap: float, background: str, max_distractors: int = 2):
    """Two scenes and two captions with the same words in a different order; caption k is true only of scene k.

    Kinds: "swap-att" ("a red circle left of a blue square" / "a blue circle left of a red square") and "swap-obj"
    ("a red circle left of a blue square" / "a blue square left of a red circle").
    """
    allowed = set(rule.allowed)
    for _ in range(200):
        c1, c2 = (COLOR_NAMES[int(k)] for k in rng.choice(len(COLOR_NAMES), 2, replace=False))
        s1, s2 = (SHAPES[int(k)] for k in rng.choice(len(SHAPES), 2, replace=False))
        kind = "swap-att" if rng.random() < 0.5 else "swap-obj"
        rel = _pick(rng, ["left of", "right of", "above", "below"])
        d0 = {"objects": [(None, c1, s1), (None, c2, s2)], "relation": (0, rel, 1)}
        if kind == "swap-att":
            d1 = {"objects": [(None, c2, s1), (None, c1, s2)], "relation": (0, rel, 1)}
        else:
            d1 = {"objects": [(None, c2, s2), (None, c1, s1)], "relation": (0, rel, 1)}
        if not all((c, s) in allowed for d in (d0, d1) for _, c, s in d["objects"]):
            continue
        # Distractors share no colour or shape with the caption words, so they cannot make a caption true.
        spare = [(c, s) for c, s in rule.allowed if c not in (c1, c2) and s not in (s1, s2)]
        scenes = []
        for d in (d0, d1):
            n_extra = int(rng.integers(max_distractors + 1)) if spare else 0
            attrs = [(s, c, _pick(rng, SIZES)) for _, c, s in d["objects"]]
            attrs += [(s, c, _pick(rng, SIZES)) for c, s in (_pick(rng, spare) for _ in range(n_extra))]
            for _try in range(30):
                scene = layout_scene(rng, attrs, image_size, max_overlap, background)
                if [0, rel, 1] in scene["relations"]:
                    break
            else:
                break
            scenes.append(scene)
        if (
            len(scenes) == 2
            and is_true(d0, scenes[0])
            and is_true(d1, scenes[1])
            and not is_true(d1, scenes[0])
            and not is_true(d0, scenes[1])
        ):
            return scenes, [describe(d0), describe(d1)], kind
    raise RuntimeError("could not build a Winoground pair; the split allows too few colour-shape pairs")
