"""Tiny models with KNOWN outputs that implement the evaluation interface, for tests and CLI smoke runs.

`KeyedDualEncoder` embeds an image by a key read from its top-left pixel and a text by a lookup table, so every
similarity (and therefore every recall, gap, accuracy) is computable by hand. `ScriptedVLM` answers `generate`
and `score` from callables of (image key, prompt[, text]). Both are nn.Modules with one parameter, so the
suites' model hash works on them. `color_image(key)` makes the matching image.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image


def color_image(key: int, size: int = 16) -> Image.Image:
    """An RGB image whose red channel at (0, 0) stores `key` (0..255)."""
    img = Image.new("RGB", (size, size), (key, 40, 80))
    return img


def image_key(img: Image.Image) -> int:
    return int(img.getpixel((0, 0))[0])


class KeyedDualEncoder(torch.nn.Module):
    """embed_images: image key -> vector from `image_vectors`; embed_texts: text -> vector from `text_vectors`.

    Vectors are L2-normalised on the way out, as the DualEncoder contract requires.
    """

    def __init__(
        self,
        image_vectors: dict[int, list[float]],
        text_vectors: dict[str, list[float]] | Callable,
        logit_scale: float = math.log(10.0),
    ):
        super().__init__()
        self.image_vectors = {k: np.asarray(v, dtype=np.float32) for k, v in image_vectors.items()}
        self.text_vectors = text_vectors
        self.log_logit_scale = torch.nn.Parameter(torch.tensor(float(logit_scale)))  # t', as in open_clip

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.log_logit_scale.exp()  # s = exp(t'), as DualEncoder.logit_scale

    @staticmethod
    def _norm(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.stack(a)).float()  # [B, E]
        return t / t.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def embed_images(self, images: list) -> torch.Tensor:
        return self._norm([self.image_vectors[image_key(im)] for im in images])

    def embed_texts(self, texts: list[str]) -> torch.Tensor:
        lookup = self.text_vectors if callable(self.text_vectors) else self.text_vectors.__getitem__
        return self._norm([np.asarray(lookup(t), dtype=np.float32) for t in texts])


class ScriptedVLM(torch.nn.Module):
    """generate -> answer(key, prompt); score -> score(key, text, prompt). Counts calls for tests."""

    def __init__(
        self, answer: Callable[[int, str], str] | None = None, score: Callable[[int, str, str], float] | None = None
    ):
        super().__init__()
        self.answer_fn = answer or (lambda key, prompt: "")
        self.score_fn = score or (lambda key, text, prompt: 0.0)
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.generated = 0
        self.repetition_penalties: list[float] = []  # what each generate call was asked for
        self.num_beams: list[int] = []

    def generate(
        self,
        images,
        prompts,
        max_new_tokens: int = 32,
        do_sample: bool = False,
        repetition_penalty: float = 1.0,
        num_beams: int = 1,
    ) -> list[str]:
        self.generated += len(images)
        self.repetition_penalties.append(repetition_penalty)
        self.num_beams.append(num_beams)
        prompts = [None] * len(images) if prompts is None else prompts  # None: the caption format, no prompt
        return [self.answer_fn(image_key(im), p) for im, p in zip(images, prompts)]

    def score(self, images, texts, prompts) -> torch.Tensor:
        return torch.tensor([self.score_fn(image_key(im), t, p) for im, t, p in zip(images, texts, prompts)])


class ListDataset:
    """A map-style dataset over a list of item dicts, with optional attributes (classnames, templates, ...)."""

    def __init__(self, rows: list[dict], **attrs):
        self.rows = rows
        for k, v in attrs.items():
            setattr(self, k, v)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]
