"""Referring-expression grounding: parse a box from generated text, IoU, accuracy at IoU >= 0.5.

Boxes are [x0, y0, x1, y1] with x0 <= x1, y0 <= y1. A generation without a parsable box counts as IoU 0.
"""

from __future__ import annotations

import re

import numpy as np

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_BOX = re.compile(r"[\[(]" + ",".join([_NUM] * 4) + r"[\])]")


def parse_box(text: str) -> list[float] | None:
    """The first "[x0, y0, x1, y1]" (or parenthesised) group of four numbers; corners reordered if swapped."""
    m = _BOX.search(text)
    if m is None:
        return None
    x0, y0, x1, y1 = (float(g) for g in m.groups())
    return [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]


def box_iou(a, b) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (0 when the union is empty)."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def grounding_accuracy(pred_boxes: list, gt_boxes: list, threshold: float = 0.5) -> dict:
    """Accuracy at IoU >= threshold, mean IoU, and the fraction of unparsable predictions (None)."""
    if len(pred_boxes) != len(gt_boxes) or not gt_boxes:
        raise ValueError(f"need one prediction per ground-truth box, got {len(pred_boxes)} and {len(gt_boxes)}")
    ious = np.array([0.0 if p is None else box_iou(p, g) for p, g in zip(pred_boxes, gt_boxes)])
    return {
        f"acc@{threshold}": float((ious >= threshold).mean()),
        "mean_iou": float(ious.mean()),
        "unparsed": float(np.mean([p is None for p in pred_boxes])),
        "ious": ious.tolist(),
    }
