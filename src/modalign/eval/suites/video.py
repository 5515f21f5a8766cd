"""The temporal probe: the same video questions with the frames in order, reversed and shuffled.

A model that reads time answers "Which way does the circle move?" from the order of its frames; reversed, the answer
flips, shuffled, it is a guess. A model that ignores time (one that pools the frames into a bag) gives the same
answers in all three orders: no drop. Items {"video": [frames], "question", "answer", "qtype"} (the `motion` world's
vqa task, or your own). Shuffles are seeded permutations that move at least half the frames, the same per item
across runs.
"""

from __future__ import annotations

import numpy as np

from ...registry import ConfigError
from .. import metrics as M
from .common import generate, items, require, row_images, settings
from .generative import SHORT_ANSWER

ORDERS = ("original", "reversed", "shuffled")


def shuffled_order(n: int, rng) -> list[int]:
    """A permutation of range(n) that leaves at most half the frames in place (identity is no probe)."""
    if n < 2:
        return list(range(n))
    for _ in range(100):
        perm = [int(k) for k in rng.permutation(n)]
        if sum(p == i for i, p in enumerate(perm)) <= n // 2:
            return perm
    return list(range(1, n)) + [0]


def reorder(frames: list, order: str, rng) -> list:
    if order == "original":
        return list(frames)
    if order == "reversed":
        return list(frames)[::-1]
    if order == "shuffled":
        return [frames[k] for k in shuffled_order(len(frames), rng)]
    raise ConfigError(f"frame order must be one of {', '.join(ORDERS)}, got {order!r}")


def temporal(
    model,
    dataset,
    prompt: str = "{question} " + SHORT_ANSWER,
    orders=ORDERS,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Video QA accuracy per question type with the frames in each of `orders`, and the drops from the original."""
    require(model, "generative", "temporal")
    if "{question}" not in prompt:
        raise ConfigError("the temporal prompt needs a {question} slot")
    if "original" not in orders:
        raise ConfigError("the temporal probe compares against the original order: keep it in `orders`")
    rows = items(dataset, limit, "temporal", progress)
    if any(not r.get("video") for r in rows):
        raise ConfigError("the temporal probe needs items with a `video` (a list of frames)")
    prompts = [prompt.format(question=r["question"]) for r in rows]
    answers, qtypes = [r["answer"] for r in rows], [r.get("qtype", "all") for r in rows]
    metrics, samples = {}, []
    scores = {}
    for order in orders:
        rng = np.random.default_rng(seed)
        videos = [reorder(r["video"], order, rng) for r in rows]
        preds = generate(model, row_images(rows), prompts, batch_size, max_new_tokens, progress, video=videos)
        s = M.vqa_score(preds, answers, qtypes)
        scores[order] = s
        metrics[f"{order}_accuracy"] = s["accuracy"]
        metrics.update({f"{order}_{t}": v for t, v in s["per_qtype"].items()})
        samples += [
            {"id": r["id"], "order": order, "question": r["question"], "answer": p, "truth": r["answer"]}
            for r, p in list(zip(rows, preds))[:4]
        ]
    for order in orders:
        if order == "original":
            continue
        metrics[f"drop_{order}"] = scores["original"]["accuracy"] - scores[order]["accuracy"]
        for t, v in scores["original"]["per_qtype"].items():
            metrics[f"drop_{order}_{t}"] = v - scores[order]["per_qtype"][t]
    return {
        "suite": "temporal",
        "metrics": metrics,
        "settings": settings(model, dataset, seed=seed, prompt=prompt, orders=list(orders), limit=limit),
        "samples": samples,
    }
