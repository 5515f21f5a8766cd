"""A Hugging Face CLIP or SigLIP checkpoint as a dual encoder: `embed_images`, `embed_texts`, `logit_scale`.

Images go through the checkpoint's own image processor, texts through its tokenizer: CLIP pads to the longest text
(truncating at its position table) with an attention mask; SigLIP pads every text to its full length and passes no
mask, the way it was trained and its own tokenizer returns. Embeddings are L2-normalised, as the interface says.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


def _features(out) -> torch.Tensor:
    """transformers >= 5 returns a model output whose pooler_output is the projected embedding; 4.x a tensor."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class HFDualEncoder(nn.Module):
    def __init__(self, model, processor, family: str, path: str | Path | None = None):
        super().__init__()
        self.model = model.eval()
        self.processor = processor
        self.family = family
        self.path = None if path is None else str(path)
        self.max_text_length = int(model.config.text_config.max_position_embeddings)

    @classmethod
    def from_pretrained(cls, directory: str | Path, family: str) -> HFDualEncoder:
        from transformers import AutoModel, AutoProcessor

        processor = AutoProcessor.from_pretrained(str(directory))
        model = AutoModel.from_pretrained(str(directory), dtype=torch.float32)
        return cls(model, processor, family, directory)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.detach().exp()  # s = exp(t'), as DualEncoder.logit_scale

    @property
    def logit_bias(self) -> torch.Tensor | None:
        bias = getattr(self.model, "logit_bias", None)
        return None if bias is None else bias.detach()

    @torch.no_grad()
    def embed_images(self, images: list, batch_size: int = 64) -> torch.Tensor:
        out = []
        for lo in range(0, len(images), batch_size):
            pixels = self.processor(images=list(images[lo : lo + batch_size]), return_tensors="pt")["pixel_values"]
            out.append(_features(self.model.get_image_features(pixel_values=pixels.float())))
        return nn.functional.normalize(torch.cat(out), dim=-1)  # [B, E]

    @torch.no_grad()
    def embed_texts(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        out = []
        for lo in range(0, len(texts), batch_size):
            chunk = list(texts[lo : lo + batch_size])
            if self.family == "siglip":
                enc = self.processor(
                    text=chunk,
                    padding="max_length",
                    max_length=self.max_text_length,
                    truncation=True,
                    return_tensors="pt",
                )
                inputs = {"input_ids": enc["input_ids"]}
            else:
                enc = self.processor(
                    text=chunk, padding=True, max_length=self.max_text_length, truncation=True, return_tensors="pt"
                )
                inputs = {k: enc[k] for k in ("input_ids", "attention_mask") if k in enc}
            out.append(_features(self.model.get_text_features(**inputs)))
        return nn.functional.normalize(torch.cat(out), dim=-1)  # [B, E]
