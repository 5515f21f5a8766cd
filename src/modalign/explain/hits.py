"""Do the maps point at the right object? The pointing game on the shapes world.

For every object word (a phrase naming exactly one object of the scene) the map's peak is a hit when the centre
of its peak cell lies inside that object's box. Chance is what a uniformly random point scores: the box's share of
the image area, averaged over the same targets.

- `hit_rate(points, boxes, image_sizes)`: the pure metric.
- `pointing_items(dataset)`: shapes `grounding` items (the referring expression and its box) or `caption` items
  (the scene graph in `meta["scene"]`: each object with a colour+shape unique in its scene, named in a caption
  listing the scene's objects) as {"image", "text", "targets": [(phrase, box)]}.
- `pointing_game(model, items, method)`: explains every target and scores it.
"""

from __future__ import annotations

import numpy as np

from ..data.worlds.shapes.language import join_list, with_article
from .api import explain


def point_in_box(point, box) -> bool:
    """Boxes are [x0, y0, x1, y1] pixels, end-exclusive (the shapes world's convention)."""
    x, y = point
    x0, y0, x1, y1 = box
    return x0 <= x < x1 and y0 <= y < y1


def hit_rate(points: list, boxes: list, image_sizes: list) -> dict:
    """{"hit_rate", "chance", "n", "hits"}: fraction of points inside their box, and mean box area / image area."""
    if not len(points) == len(boxes) == len(image_sizes):
        raise ValueError(f"need one box and image size per point, got {len(points)}, {len(boxes)}, {len(image_sizes)}")
    if not points:
        raise ValueError("hit_rate needs at least one point")
    hits = [point_in_box(p, b) for p, b in zip(points, boxes)]
    shares = []
    for (x0, y0, x1, y1), (w, h) in zip(boxes, image_sizes):
        area = max(0.0, min(x1, w) - max(x0, 0)) * max(0.0, min(y1, h) - max(y0, 0))
        shares.append(area / (w * h))
    return {
        "hit_rate": float(np.mean(hits)),
        "chance": float(np.mean(shares)),
        "n": len(hits),
        "hits": [bool(h) for h in hits],
    }


def object_targets(scene: dict) -> list[tuple[str, list[int]]]:
    """(colour+shape phrase, box) for each object whose phrase names it alone in the scene."""
    phrases = [f"{o['color']} {o['shape']}" for o in scene["objects"]]
    return [(p, list(o["box"])) for p, o in zip(phrases, scene["objects"]) if phrases.count(p) == 1]


def pointing_items(dataset, limit: int | None = None) -> list[dict]:
    """{"image", "text", "targets"} from shapes grounding or caption items (see the module docstring)."""
    out = []
    for idx in range(len(dataset) if limit is None else min(limit, len(dataset))):
        item = dataset[idx]
        if "expression" in item and "box" in item:
            out.append(
                {
                    "image": item["image"],
                    "text": item["expression"],
                    "targets": [(item["expression"], list(item["box"]))],
                }
            )
        elif "scene" in item.get("meta", {}):
            scene = item["meta"]["scene"]
            targets = object_targets(scene)
            if targets:
                text = join_list([with_article(f"{o['color']} {o['shape']}") for o in scene["objects"]])
                out.append({"image": item["image"], "text": text, "targets": targets})
        else:
            raise ValueError(
                f"item {item.get('id')!r} has neither a grounding box nor a scene graph in "
                f"meta['scene']: use the shapes world's grounding or caption task"
            )
    return out


def pointing_game(model, items: list[dict], method: str | None = None, on: str | None = None) -> dict:
    """Explain every target phrase of every item; hit_rate / chance / n, plus the peak points."""
    points, boxes, sizes = [], [], []
    for item in items:
        phrases = [p for p, _ in item["targets"]]
        spans = "text" if phrases == [item["text"]] else phrases
        attributions = explain(model, item["image"], item["text"], method=method, spans=spans, on=on)
        for attr, (_, box) in zip(attributions, item["targets"]):
            points.append(attr.point)
            boxes.append(box)
            sizes.append(item["image"].size)
    result = hit_rate(points, boxes, sizes)
    result["points"] = [[round(x, 2), round(y, 2)] for x, y in points]
    return result
