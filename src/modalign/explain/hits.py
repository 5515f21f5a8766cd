"""Do the maps point at the right object? The pointing game, on any data with boxes.

For every phrase that names exactly one annotated region (a grounding expression, or a caption's words for one of
its region boxes) the map's peak is a hit when the centre of its peak cell lies inside that region's box. Chance is
what a uniformly random point scores: the box's share of the image area, averaged over the same targets.

- `hit_rate(points, boxes, image_sizes)`: the pure metric.
- `pointing_items(dataset)`: grounding items (a referring expression and its box) or captions with region boxes
  (each region whose words name it alone in the caption: the longest run of its words standing once in the text)
  as {"image", "text", "targets": [(phrase, box)]}.
- `pointing_game(model, items, method)`: explains every target and scores it.
"""

from __future__ import annotations

import re

import numpy as np

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


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def region_phrase(region_text: str, text: str) -> str | None:
    """The longest run of the region's words (two or more) that stands exactly once, as whole words, in `text`."""
    words, hay = _words(region_text), " " + " ".join(_words(text)) + " "
    for n in range(len(words), 1, -1):
        for i in range(len(words) - n + 1):
            phrase = " ".join(words[i : i + n])
            if hay.count(f" {phrase} ") == 1:
                return phrase
    return None


def region_targets(text: str, regions: list[dict]) -> list[tuple[str, list[int]]]:
    """(phrase of `text`, box) for each region some phrase of the text names alone (see `region_phrase`)."""
    found = [(region_phrase(r["text"], text), list(r["box"])) for r in regions]
    phrases = [p for p, _ in found]
    return [(p, box) for p, box in found if p is not None and phrases.count(p) == 1]


def pointing_items(dataset, limit: int | None = None) -> list[dict]:
    """{"image", "text", "targets"} from grounding items (`expression` + `box`) or from items whose `text` names
    some of their `regions` (a caption and its region boxes; see the module docstring)."""
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
        elif item.get("regions") and item.get("text"):
            targets = region_targets(item["text"], item["regions"])
            if targets:
                out.append({"image": item["image"], "text": item["text"], "targets": targets})
        else:
            raise ValueError(
                f"item {item.get('id')!r} has neither a grounding box (`expression` + `box`) nor `regions` named by "
                "its `text`: give grounding items or captions with region boxes"
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
