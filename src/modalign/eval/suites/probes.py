"""Suites that compare scores of matched and mismatched (image, text) pairs: compositional probes and Winoground.

Works for both model kinds: dual encoders score a pair by cosine, generative models by log p(text | image, prompt)
(length-normalised, per the interface). A probe is right only if the true caption scores STRICTLY higher.
"""

from __future__ import annotations

import numpy as np

from ...registry import ConfigError
from .. import metrics as M
from .common import items, pair_scores, settings


def _kind(model) -> str:
    return "cosine" if hasattr(model, "embed_images") else "log p(text | image, prompt)"


def compositional(
    model, dataset, prompt: str = "", batch_size: int = 32, limit: int | None = None, progress: bool = True
) -> dict:
    """Items {"id", "image", "positive", "negatives": [{"type", "text"}]}: one trial per negative, accuracy per type."""
    rows = items(dataset, limit, "compositional", progress)
    images, texts, owner, types = [], [], [], []
    for i, r in enumerate(rows):
        if not r.get("negatives"):
            raise ConfigError(f"probe item {r.get('id')!r} has no negatives; each needs [{{'type', 'text'}}, ...]")
        images.append(r["image"])
        texts.append(r["positive"])
        owner.append(i)
        types.append(None)  # the positive
        for neg in r["negatives"]:
            images.append(r["image"])
            texts.append(neg["text"])
            owner.append(i)
            types.append(neg["type"])
    s = pair_scores(model, images, texts, prompt, batch_size, progress)  # [P]
    pos_score = {owner[j]: s[j] for j in range(len(s)) if types[j] is None}
    trial = [j for j in range(len(s)) if types[j] is not None]
    r = M.probe_accuracy([pos_score[owner[j]] for j in trial], [s[j] for j in trial], [types[j] for j in trial])
    metrics = {"macro": r["macro"], "overall": r["overall"], **{f"acc_{t}": v for t, v in r["per_type"].items()}}
    return {
        "suite": "compositional",
        "metrics": metrics,
        "settings": settings(model, dataset, rows=rows, prompt=prompt, score=_kind(model), trials=r["n"], limit=limit),
        "figures": {"per_type": r["per_type"]},
    }


def winoground(
    model, dataset, prompt: str = "", batch_size: int = 32, limit: int | None = None, progress: bool = True
) -> dict:
    """Items {"id", "images": [I0, I1], "captions": [C0, C1]}: text / image / group scores."""
    rows = items(dataset, limit, "winoground", progress)
    images, texts = [], []
    for r in rows:
        if len(r["images"]) != 2 or len(r["captions"]) != 2:
            raise ConfigError(f"winoground item {r.get('id')!r} needs exactly 2 images and 2 captions")
        for c in range(2):
            for i in range(2):
                images.append(r["images"][i])
                texts.append(r["captions"][c])
    s = pair_scores(model, images, texts, prompt, batch_size, progress).reshape(len(rows), 2, 2)  # [N, cap, img]
    w = M.winoground_scores(s)
    return {
        "suite": "winoground",
        "metrics": {k: w[k] for k in ("text", "image", "group")},
        "settings": settings(model, dataset, rows=rows, prompt=prompt, score=_kind(model), limit=limit),
        "figures": {},
        "raw_scores": np.round(s, 6).tolist()[:50],
    }
