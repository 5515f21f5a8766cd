"""Scene graphs of the shapes world: sample objects, lay them out without hiding each other, derive the geometry.

A scene is a plain JSON-able dict (it travels in `meta["scene"]` and in manifests):
    {"image_size": S, "background": "plain"|"noise"|"texture", "noise_seed": int,
     "objects": [{"shape", "color", "size", "box": [x0, y0, x1, y1], "center": [cx, cy], "position"}, ...],
     "relations": [[i, "left of", j], ...], "nearest": [j per object], "counts": {...}}
Boxes are integer pixels, end-exclusive: the object covers columns x0..x1-1 and rows y0..y1-1. Objects are drawn in
list order (later ones on top). Layout guarantees: no object's box centre lies inside another object's box (so the
centre pixel always shows the object's own colour), and two boxes share at most `max_overlap` of the smaller box.
"""

from __future__ import annotations

import numpy as np

from .vocab import COLOR_NAMES, RELATIONS, SHAPES, SIZE_FRACTION, SIZES

BACKGROUNDS = ("plain", "noise", "texture")
_CANDIDATES = 48  # layout candidates tried at once per object (vectorised rejection sampling)


class LayoutError(RuntimeError):
    """The requested objects do not fit the image under the overlap limit."""


def _place(rng, sides: np.ndarray, image_size: int, max_overlap: float) -> np.ndarray | None:
    """Boxes [n, 4] (x0, y0, x1, y1) for squares of the given sides, or None if one did not fit."""
    boxes = np.zeros((len(sides), 4), dtype=np.int64)
    for k, side in enumerate(sides):
        hi = image_size - side + 1
        xy = rng.integers(0, hi, size=(_CANDIDATES, 2))  # [C, 2] top-left corners
        cand = np.concatenate([xy, xy + side], axis=1)  # [C, 4]
        if k:
            placed = boxes[:k]  # [k, 4]
            ix = np.minimum(cand[:, None, 2], placed[None, :, 2]) - np.maximum(cand[:, None, 0], placed[None, :, 0])
            iy = np.minimum(cand[:, None, 3], placed[None, :, 3]) - np.maximum(cand[:, None, 1], placed[None, :, 1])
            inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)  # [C, k]
            smaller = np.minimum(side, placed[:, 2] - placed[:, 0]) ** 2  # [k]
            ok = (inter <= max_overlap * smaller[None, :]).all(axis=1)
            # Centre pixels stay visible: neither box may contain the other's centre pixel.
            c_c = (cand[:, :2] + cand[:, 2:]) // 2  # [C, 2]
            p_c = (placed[:, :2] + placed[:, 2:]) // 2  # [k, 2]
            cand_in_placed = ((c_c[:, None, :] >= placed[None, :, :2]) & (c_c[:, None, :] < placed[None, :, 2:])).all(
                -1
            )
            placed_in_cand = ((p_c[None, :, :] >= cand[:, None, :2]) & (p_c[None, :, :] < cand[:, None, 2:])).all(-1)
            ok &= ~(cand_in_placed | placed_in_cand).any(axis=1)
            hits = np.flatnonzero(ok)
            if hits.size == 0:
                return None
            cand = cand[hits]
        boxes[k] = cand[0]
    return boxes


def position_word(cx: float, cy: float, image_size: int) -> str:
    """Where a point is, in thirds of the image: "top left", "top", "left", "center", "bottom right"..."""
    col = ("left", "", "right")[min(int(3 * cx / image_size), 2)]
    row = ("top", "", "bottom")[min(int(3 * cy / image_size), 2)]
    return " ".join(w for w in (row, col) if w) or "center"


def relations_between(a: dict, b: dict) -> list[str]:
    """Relations that hold from a to b: centres apart by more than half the mean side along that axis."""
    (ax, ay), (bx, by) = a["center"], b["center"]
    margin = ((a["box"][2] - a["box"][0]) + (b["box"][2] - b["box"][0])) / 4
    out = []
    if bx - ax > margin:
        out.append("left of")
    if ax - bx > margin:
        out.append("right of")
    if by - ay > margin:  # image rows grow downwards
        out.append("above")
    if ay - by > margin:
        out.append("below")
    return out


def derive_graph(objects: list[dict], image_size: int) -> dict:
    """Relations, nearest neighbours and counts from the objects' geometry."""
    relations = []
    for i, a in enumerate(objects):
        for j, b in enumerate(objects):
            if i != j:
                relations.extend([i, r, j] for r in relations_between(a, b))
    centers = np.array([o["center"] for o in objects], dtype=np.float64).reshape(-1, 2)  # [n, 2]
    dist = np.linalg.norm(centers[:, None] - centers[None], axis=-1)  # [n, n]
    np.fill_diagonal(dist, np.inf)
    nearest = [int(j) if len(objects) > 1 else -1 for j in dist.argmin(axis=1)] if len(objects) else []
    counts = {
        "objects": len(objects),
        "shapes": {s: c for s in SHAPES if (c := sum(o["shape"] == s for o in objects))},
        "colors": {c: k for c in COLOR_NAMES if (k := sum(o["color"] == c for o in objects))},
        "sizes": {z: k for z in SIZES if (k := sum(o["size"] == z for o in objects))},
    }
    return {"relations": relations, "nearest": nearest, "counts": counts}


def make_object(shape: str, color: str, size: str, box, image_size: int) -> dict:
    x0, y0, x1, y1 = (int(v) for v in box)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2  # the centre pixel (always covered by the shape)
    return {
        "shape": shape,
        "color": color,
        "size": size,
        "box": [x0, y0, x1, y1],
        "center": [cx, cy],
        "position": position_word(cx + 0.5, cy + 0.5, image_size),
    }


def layout_scene(
    rng, attributes: list[tuple[str, str, str]], image_size: int, max_overlap: float = 0.1, background: str = "plain"
) -> dict:
    """Place objects with the given (shape, color, size) and return the scene graph dict."""
    if background == "mixed":
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS + ('mixed',)}, got {background!r}")
    attributes = list(attributes)
    for _attempt in range(8):
        sides = np.array([_side(rng, z, image_size) for _, _, z in attributes], dtype=np.int64)
        boxes = _place(rng, sides, image_size, max_overlap)
        if boxes is not None:
            break
        # Crowded: shrink one large object before trying again, so scenes keep their object count.
        large = [k for k, (_, _, z) in enumerate(attributes) if z == "large"]
        if large:
            k = large[int(rng.integers(len(large)))]
            attributes[k] = (attributes[k][0], attributes[k][1], "small")
    else:
        raise LayoutError(
            f"{len(attributes)} objects do not fit a {image_size}px image with max_overlap="
            f"{max_overlap}; lower max_objects or raise image_size / max_overlap"
        )
    objects = [make_object(s, c, z, b, image_size) for (s, c, z), b in zip(attributes, boxes)]
    scene = {
        "image_size": image_size,
        "background": background,
        "noise_seed": int(rng.integers(2**31)),
        "objects": objects,
    }
    scene.update(derive_graph(objects, image_size))
    return scene


def _side(rng, size: str, image_size: int) -> int:
    # +-8% jitter keeps the two size classes apart (0.147..0.173 vs 0.258..0.302 of the image side).
    return max(5, int(round(SIZE_FRACTION[size] * image_size * rng.uniform(0.92, 1.08))))


def present_objects(scene: dict) -> list[str]:
    """Distinct "colour shape" phrases in the scene, in first-appearance order."""
    seen = []
    for o in scene["objects"]:
        name = f"{o['color']} {o['shape']}"
        if name not in seen:
            seen.append(name)
    return seen


def holds(scene: dict, i: int, relation: str, j: int) -> bool:
    if relation not in RELATIONS:
        raise ValueError(f"unknown relation {relation!r}; use one of {RELATIONS}")
    return [i, relation, j] in scene["relations"]
