"""Referring expressions for the shapes world: a phrase that denotes exactly one object, and that object's box.

An expression is built from a structured reference {"color", "shape", "size", "position", "extreme"} (any subset);
`denotes(ref, scene)` lists the objects it fits, and only references that fit exactly one object are used.
"""

from __future__ import annotations

from .language import where_phrase

EXTREMES = {"leftmost": (0, 1), "rightmost": (0, -1), "topmost": (1, 1), "bottommost": (1, -1)}


def denotes(ref: dict, scene: dict) -> list[int]:
    """Indices of the objects the reference fits."""
    objs = scene["objects"]
    fits = [
        k for k, o in enumerate(objs) if all(ref.get(a) in (None, o[a]) for a in ("color", "shape", "size", "position"))
    ]
    if ref.get("extreme") and fits:
        axis, sign = EXTREMES[ref["extreme"]]
        best = min(sign * objs[k]["center"][axis] for k in fits)
        fits = [k for k in fits if sign * objs[k]["center"][axis] == best]
    return fits


def expression(ref: dict) -> str:
    head = " ".join(w for w in (ref.get("extreme"), ref.get("size"), ref.get("color")) if w)
    noun = ref.get("shape") or "object"
    text = f"the {head} {noun}" if head else f"the {noun}"
    return text + (" " + where_phrase(ref["position"]) if ref.get("position") else "")


def referring_expression(scene: dict, index: int, rng) -> tuple[str, dict]:
    """A random unambiguous expression for object `index` (simplest kinds preferred but mixed for variety)."""
    o = scene["objects"][index]
    candidates = [
        {"shape": o["shape"]},
        {"color": o["color"]},
        {"color": o["color"], "shape": o["shape"]},
        {"size": o["size"], "color": o["color"], "shape": o["shape"]},
        {"color": o["color"], "shape": o["shape"], "position": o["position"]},
    ]
    unique = [r for r in candidates if denotes(r, scene) == [index]]
    if not unique:
        # Same-looking objects in the same region: name the one furthest along some axis.
        for extreme in EXTREMES:
            r = {"extreme": extreme, "color": o["color"], "shape": o["shape"]}
            if denotes(r, scene) == [index]:
                unique.append(r)
    if not unique:
        raise ValueError(f"object {index} cannot be singled out in this scene")
    ref = unique[int(rng.integers(len(unique)))]
    return expression(ref), ref


def grounding_item(scene: dict, rng) -> dict:
    """{"expression", "box", "index", "reference"} for a random object of the scene."""
    order = [int(k) for k in rng.permutation(len(scene["objects"]))]
    for k in order:
        try:
            text, ref = referring_expression(scene, k, rng)
        except ValueError:
            continue
        return {"expression": text, "box": list(scene["objects"][k]["box"]), "index": k, "reference": ref}
    raise ValueError("no object of this scene can be singled out")
