"""Suites that compare scores of matched and mismatched (image, text) pairs: compositional probes and Winoground.

Works for both model kinds: dual encoders score a pair by cosine, generative models by log p(text | image, prompt)
(length-normalised, per the interface). A probe is right only if the true caption scores STRICTLY higher.
"""

from __future__ import annotations

import numpy as np

from ...registry import ConfigError
from .. import metrics as M
from .common import items, pair_scores, param_from, settings

TAGS = ("collapsed_tag", "tag", "secondary_tag", "num_main_preds")  # Winoground's example tags


def _kind(model) -> str:
    return "cosine" if hasattr(model, "embed_images") else "log p(text | image, prompt)"


def compositional(
    model,
    dataset,
    prompt: str = "",
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = True,
    min_type_count: int | None = None,
) -> dict:
    """Items {"id", "image", "positive", "negatives": [{"type", "text"}]}: one trial per negative, accuracy per type.
    The macro mean skips types with fewer than `min_type_count` trials (default: the dataset's, e.g. ARO's 25)."""
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
    min_type_count = param_from(min_type_count, dataset, "min_type_count")
    most = max(types.count(t) for t in set(types) - {None})
    if min_type_count is not None and most < min_type_count:
        raise ConfigError(
            f"no probe type has min_type_count={min_type_count} trials (the most is {most}); "
            f"give min_type_count=1 to average over every type"
        )
    r = M.probe_accuracy(
        [pos_score[owner[j]] for j in trial], [s[j] for j in trial], [types[j] for j in trial], min_type_count
    )
    metrics = {"macro": r["macro"], "overall": r["overall"], **{f"acc_{t}": v for t, v in r["per_type"].items()}}
    return {
        "suite": "compositional",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            rows=rows,
            prompt=prompt,
            score=_kind(model),
            trials=r["n"],
            min_type_count=min_type_count,
            limit=limit,
        ),
        "figures": {"per_type": r["per_type"], "type_counts": r["counts"]},
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
    metrics = {k: w[k] for k in ("text", "image", "group")}
    breakdown = _by_tag(rows, s)
    for value, scores in breakdown.get("collapsed_tag", {}).items():  # Object / Relation / Both: the paper's table
        metrics.update({f"{value}_{k}": scores[k] for k in ("text", "image", "group")})
    return {
        "suite": "winoground",
        "metrics": metrics,
        "settings": settings(model, dataset, rows=rows, prompt=prompt, score=_kind(model), limit=limit),
        "figures": {"per_tag": breakdown},
        "raw_scores": np.round(s, 6).tolist()[:50],
    }


def _by_tag(rows: list[dict], scores: np.ndarray) -> dict:
    """{tag field: {value: text / image / group scores}} for each tag the items carry; comma-separated values
    (secondary tags such as "Symbolic, Pragmatics") count the example under each."""
    out: dict = {}
    for field in TAGS:
        members: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            if r.get(field) in (None, ""):
                continue
            for value in str(r[field]).split(","):
                if value.strip():
                    members.setdefault(value.strip(), []).append(i)
        if members:
            out[field] = {v: M.winoground_scores(scores[idx]) for v, idx in sorted(members.items())}
    return out
