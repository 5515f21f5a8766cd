"""Suites on an audio-text dual encoder (CLAP): retrieval in both directions over clips and their texts.

Zero-shot sound classification from text prompts is the `zeroshot` suite on items with `audio` (embedding.py).
"""

from __future__ import annotations

from .. import metrics as M
from .common import embed_audio, embed_texts, items, require, settings


def audio_retrieval(
    model, dataset, batch_size: int = 32, limit: int | None = None, ks=(1, 5, 10), progress: bool = True
) -> dict:
    """Audio->text and text->audio Recall@K over items {"audio", "text"}.

    The text gallery holds each distinct text once (several clips may say the same caption, in other voices): a2t_R@K
    is the fraction of clips whose text is among the K texts nearest to the clip; t2a_R@K the fraction of distinct
    texts with any of their clips among the K nearest clips. Ties count against the truth (metrics/retrieval.py).
    """
    require(model, "dual", "audio_retrieval")
    rows = items(dataset, limit, "audio_retrieval", progress)
    index: dict[str, int] = {}
    clip_text = [index.setdefault(r["text"], len(index)) for r in rows]
    texts = list(index)
    a = embed_audio(model, [r["audio"] for r in rows], batch_size, progress)  # [C, E]
    t = embed_texts(model, texts, batch_size, progress)  # [T, E]
    # recall_at_k's "images" are the distinct texts and its "texts" the clips: its t2i is audio->text
    r = M.recall_at_k(t @ a.T, clip_text, ks=tuple(ks))
    metrics = {f"a2t_R@{k}": r[f"t2i_R@{k}"] for k in ks}
    metrics.update({f"t2a_R@{k}": r[f"i2t_R@{k}"] for k in ks})
    metrics["mean_R"] = r["mean_R"]
    return {
        "suite": "audio_retrieval",
        "metrics": metrics,
        "settings": settings(model, dataset, ks=list(ks), n_clips=len(rows), n_texts=len(texts), limit=limit),
        "figures": {},
    }
