"""Cross-modal retrieval Recall@K in both directions (CLIP_benchmark definition).

text->image: fraction of texts whose ground-truth image is in the top K images.
image->text: fraction of images with ANY of their captions in the top K texts.
Ties are broken against the ground truth (a candidate with an equal score ranks ahead), so a collapsed model whose
scores are all equal gets recall ~0, not 1. Ties between two correct captions do not push each other out.
"""

from __future__ import annotations

import numpy as np


def recall_at_k(similarity, text_to_image, ks=(1, 5, 10)) -> dict[str, float]:
    """similarity: [n_images, n_texts] scores; text_to_image: [n_texts] index of each text's image.

    Returns {"t2i_R@K": ..., "i2t_R@K": ..., "mean_R": ...} as fractions in [0, 1].
    """
    s = np.asarray(similarity, dtype=np.float64)
    t2i = np.asarray(text_to_image, dtype=np.int64)
    if s.ndim != 2:
        raise ValueError(f"similarity must be [n_images, n_texts], got shape {s.shape}")
    n_img, n_txt = s.shape
    if t2i.shape != (n_txt,):
        raise ValueError(f"text_to_image needs one image index per text ({n_txt}), got shape {t2i.shape}")
    if n_txt and (t2i.min() < 0 or t2i.max() >= n_img):
        raise ValueError(f"text_to_image indices must lie in [0, {n_img - 1}]")

    # text -> image: rank of the GT image among all images for each text column.
    gt = s[t2i, np.arange(n_txt)]  # [n_txt]
    col = s.T  # [n_txt, n_img]
    ahead = (col > gt[:, None]).sum(1) + (col == gt[:, None]).sum(1) - 1  # ties (minus itself) count ahead
    t2i_rank = ahead  # 0-based position

    # image -> text: best position among the image's captions; other captions of the same image never count ahead.
    i2t_rank = np.full(n_img, np.iinfo(np.int64).max)
    for i in range(n_img):
        own = np.flatnonzero(t2i == i)
        if own.size == 0:
            continue
        row = s[i]  # [n_txt]
        other = np.ones(n_txt, dtype=bool)
        other[own] = False
        for c in own:
            pos = (row[other] >= row[c]).sum()
            i2t_rank[i] = min(i2t_rank[i], pos)
    has_caption = i2t_rank != np.iinfo(np.int64).max

    out: dict[str, float] = {}
    for k in ks:
        out[f"t2i_R@{k}"] = float((t2i_rank < k).mean()) if n_txt else 0.0
    for k in ks:
        out[f"i2t_R@{k}"] = float((i2t_rank[has_caption] < k).mean()) if has_caption.any() else 0.0
    out["mean_R"] = float(np.mean([out[f"t2i_R@{k}"] for k in ks] + [out[f"i2t_R@{k}"] for k in ks]))
    return out
