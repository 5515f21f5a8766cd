"""Region-word alignment: image tokens under an annotated region learn that region's words.

LLaVA's first stage maps visual features into a pretrained LM's word-embedding space, so that the LM's existing
machinery for finding and copying words in its context also works on image tokens. A language model trained from
scratch has no such machinery to borrow, and its answer positions learn to gather an object's cells only slowly
(scripts/attention_on_objects.py measures how diffuse that attention stays). With region annotations (boxes with a
phrase: Visual Genome's region descriptions, a grounding set, or the shapes world's ground truth) the mapping can be
taught directly: each connector output token whose cell centre lies in a region is scored against the LM's input
embedding table, and a cross-entropy pulls it towards the region's words ("small red star top left"), spread evenly
over them. The weight is `model.region_words` (0 = off); it needs a prefix connector with a square grid of tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from modalign.connectors.grid import square_side
from modalign.registry import ConfigError


def check_grid(tokens_per_image: int) -> int:
    """Side of the square token grid, or a ConfigError naming what to change."""
    side = square_side(tokens_per_image)
    if side is None:
        raise ConfigError(
            f"region_words needs a square grid of image tokens; this connector gives "
            f"{tokens_per_image} per image (use linear, mlp or pixel-shuffle, or set region_words: 0)"
        )
    return side


def cell_targets(regions: list[dict], width: int, height: int, side: int, word_ids) -> list[tuple[int, list[int]]]:
    """[(cell index, word ids)] for the cells of a side x side grid whose centre lies in a region's box
    [x0, y0, x1, y1) (pixels); a later region wins a shared cell, as a later object is drawn on top.
    `word_ids(text)` gives a region text's token ids."""
    owner: dict[int, list[int]] = {}
    for k, r in enumerate(regions):
        x0, y0, x1, y1 = r["box"]
        ids = word_ids(r["text"])
        if not ids:
            raise ValueError(f"region {k} has no words: {r!r}")
        for gy in range(side):
            cy = (gy + 0.5) * height / side
            if not y0 <= cy < y1:
                continue
            for gx in range(side):
                cx = (gx + 0.5) * width / side
                if x0 <= cx < x1:
                    owner[gy * side + gx] = ids
    return sorted(owner.items())


def region_words_loss(
    tokens: torch.Tensor, embedding: torch.Tensor, targets: list[list[tuple[int, list[int]]]]
) -> tuple[torch.Tensor, int]:
    """Mean over annotated cells of the cross-entropy between softmax(token . E^T) and the cell's words (uniform).

    tokens [n_img, M, D] (connector outputs), embedding [V, D] (the LM's input table), targets one list per image.
    Returns (loss, cells); with no annotated cell the loss is a zero that still depends on `tokens`.
    """
    rows, cols, weights, which = [], [], [], []
    n = 0
    for i, cells in enumerate(targets):
        for cell, ids in cells:
            which.append((i, cell))
            for w in ids:
                rows.append(n)
                cols.append(w)
                weights.append(1.0 / len(ids))
            n += 1
    if n == 0:
        return tokens.sum() * 0.0, 0
    picked = torch.stack([tokens[i, c] for i, c in which])  # [n, D]
    logp = F.log_softmax(picked @ embedding.t(), dim=-1)  # [n, V]
    target = torch.zeros_like(logp)
    target[torch.tensor(rows), torch.tensor(cols)] = torch.tensor(weights, dtype=logp.dtype)
    return -(target * logp).sum(-1).mean(), n
