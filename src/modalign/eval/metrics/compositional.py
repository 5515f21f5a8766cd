"""Compositional probes: per-type hard-negative accuracy (SugarCrepe / ARO style) and Winoground scores.

A probe trial is correct iff score(image, positive) > score(image, negative) STRICTLY: a model that scores both
captions equally has not told them apart. Winoground: text score = [s(C0,I0) > s(C1,I0)] and [s(C1,I1) > s(C0,I1)];
image score = [s(C0,I0) > s(C0,I1)] and [s(C1,I1) > s(C1,I0)]; group = both.
"""

from __future__ import annotations

import numpy as np


def probe_accuracy(pos_scores, neg_scores, types: list[str], min_type_count: int | None = None) -> dict:
    """One trial per (positive, negative) pair; returns per-type accuracy and trial counts, their macro mean and the
    overall mean. `min_type_count` leaves types with fewer trials out of the macro mean (ARO's Attribution table
    keeps pairs with >= 25), never out of the overall mean."""
    pos, neg = np.asarray(pos_scores, dtype=np.float64), np.asarray(neg_scores, dtype=np.float64)
    if not (pos.shape == neg.shape == (len(types),)) or not len(types):
        raise ValueError(f"need equal non-empty lengths, got pos {pos.shape}, neg {neg.shape}, types {len(types)}")
    correct = pos > neg
    per_type, counts = {}, {}
    for t in sorted(set(types)):
        mask = np.array([x == t for x in types])
        per_type[t] = float(correct[mask].mean())
        counts[t] = int(mask.sum())
    macro_types = [t for t in per_type if min_type_count is None or counts[t] >= min_type_count]
    if not macro_types:
        raise ValueError(f"no type has min_type_count={min_type_count} trials (most: {max(counts.values())})")
    return {
        "per_type": per_type,
        "counts": counts,
        "macro": float(np.mean([per_type[t] for t in macro_types])),
        "overall": float(correct.mean()),
        "n": len(types),
    }


def winoground_scores(scores) -> dict[str, float]:
    """scores: [N, 2, 2] with scores[n, c, i] = s(caption c, image i). Returns text / image / group fractions."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 3 or s.shape[1:] != (2, 2) or s.shape[0] == 0:
        raise ValueError(f"winoground scores must be [N, 2, 2] (caption, image), got shape {s.shape}")
    c0i0, c0i1, c1i0, c1i1 = s[:, 0, 0], s[:, 0, 1], s[:, 1, 0], s[:, 1, 1]
    text = (c0i0 > c1i0) & (c1i1 > c0i1)
    image = (c0i0 > c0i1) & (c1i1 > c1i0)
    return {
        "text": float(text.mean()),
        "image": float(image.mean()),
        "group": float((text & image).mean()),
        "n": int(s.shape[0]),
    }
