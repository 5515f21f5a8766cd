"""Token noise: a fraction of the answer tokens the LM reads is replaced by random tokens; the targets stay clean.

Teacher forcing lets a caption model lean on the words it has just written: in a description, the colour word
predicts the shape that followed it in training, and the phrase written a sentence earlier can be copied. With noisy
inputs (word dropout in the sense of Bowman et al. 2016, random replacement as in BERT's corruption) the previous
words are less trustworthy, so the next word has to be read from the image. Only positions that carry a label are
touched: prompts, image placeholders and padding are never replaced.
"""

from __future__ import annotations

import torch

from ..models.vlm_prompts import IGNORE_INDEX


def replacement_ids(tokenizer) -> torch.Tensor:
    """The ids noise may write: every id of the tokenizer except its special tokens (image marker, turn ends...)."""
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "additional_special_tokens_ids", []) or [])
    # placeholders added as special tokens (<image> on a checkpoint's tokenizer, <audio>, <video>) are not always
    # listed as "additional special tokens"
    special |= {i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(t, "special", False)}
    ids = torch.arange(len(tokenizer))
    # vectorised: a real tokenizer has 10^5 ids
    ids = ids[~torch.isin(ids, torch.tensor(sorted(special), dtype=torch.long))]
    if not len(ids):
        raise ValueError("token_noise needs a tokenizer with at least one non-special token")
    return ids


def corrupt_answer_inputs(
    batch: dict, p: float, candidates: torch.Tensor, generator: torch.Generator | None = None
) -> dict:
    """A copy of `batch` whose input_ids at labelled positions are replaced with probability p by a token drawn
    uniformly from `candidates`; labels (the targets) are unchanged."""
    if not 0 <= p < 1:
        raise ValueError(f"token_noise is a probability in [0, 1), got {p}")
    if p == 0:
        return batch
    ids, labels = batch["input_ids"], batch["labels"]
    hit = (labels != IGNORE_INDEX) & (torch.rand(ids.shape, generator=generator) < p)  # [B, T]
    draws = candidates[torch.randint(len(candidates), ids.shape, generator=generator)]  # [B, T]
    return {**batch, "input_ids": torch.where(hit, draws, ids)}
