"""Auxiliary losses a stage adds to a model's own objective, by name: `aux_losses: [{name: region_words, weight: 0.3}]`.

An auxiliary loss is a plug-in with three duties: `check(model)` refuses a model it cannot serve (a ConfigError that
says what to change), `collate(model, samples, batch)` adds what it needs to a batch, and `__call__(model, batch,
image_embeds)` returns a scalar (`image_embeds`: a prefix connector's output [n_img, M, D], computed once for the
LM and every auxiliary loss). The trainer weighs it by `weight` and logs `<name>_loss` beside `lm_loss`.

- `region_words` (region_words.py): any dataset whose items carry `regions` (boxes with a phrase: Visual Genome's
  region descriptions, a grounding set, the built-in worlds' ground truth) teaches the connector tokens under each
  box that box's words, through the LM's input embedding table.
"""

from __future__ import annotations

import torch

from ..registry import ConfigError
from .region_words import cell_targets, check_grid, region_words_loss


def _sample_images(sample: dict) -> list:
    if "images" in sample:
        return list(sample["images"])
    return [sample["image"]] if sample.get("image") is not None else []


class RegionWords:
    """Pull each connector token whose cell centre lies in a sample's region box towards the region's words."""

    name = "region_words"

    def __init__(self, weight: float = 0.3):
        if not weight > 0:
            raise ConfigError(f"region_words: weight must be > 0, got {weight!r} (leave the loss out to turn it off)")
        self.weight = float(weight)
        self.side = None

    def check(self, model) -> None:
        if getattr(model, "fusion", None) != "prefix" or getattr(model, "tiler", None) is not None:
            raise ConfigError(
                "region_words trains the tokens a prefix connector puts into the LM: not with xattn or AnyRes "
                "tiling (drop it from the stage's aux_losses)"
            )
        self.side = check_grid(model.prompts.tokens_per_image)

    def collate(self, model, samples: list[dict], batch: dict) -> None:
        """Per image (text order): (cell, word ids) of the cells under the sample's `regions` (none: no cells)."""

        def word_ids(text: str) -> list[int]:
            # words as they appear inside a sentence ("a small red star"), where questions name them too
            return model.tokenizer(" " + text.strip(), add_special_tokens=False)["input_ids"]

        out = []
        for s in samples:
            imgs = _sample_images(s)
            regions = s.get("regions") or []
            if regions and len(imgs) != 1:
                raise ValueError(f"sample {s.get('id')!r}: `regions` annotate one image, the sample has {len(imgs)}")
            for im in imgs:
                width, height = im.size
                out.append(cell_targets(regions, width, height, self.side, word_ids))
        batch["region_targets"] = out

    def __call__(self, model, batch: dict, image_embeds: torch.Tensor | None) -> torch.Tensor:
        if image_embeds is None:
            return torch.zeros((), requires_grad=False)
        loss, _ = region_words_loss(image_embeds, model.lm.get_input_embeddings().weight, batch["region_targets"])
        return loss


AUX_LOSSES: dict = {"region_words": RegionWords}
