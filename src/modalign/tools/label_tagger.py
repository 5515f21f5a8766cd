"""`labels`: a trained modalign dual encoder (CLIP / SigLIP / LiT) as a zero-shot tagger over a label list.

Each label is embedded through the templates (the mean of the normalised template embeddings, renormalised, as
CLIP's zero-shot classifier does); the image's probabilities are softmax(logit_scale x cosine) over the labels. The
label list is the tool's (given when it is built: a list, or a text file with one label per line); a call may pass its
own `labels` instead, which is what makes it zero-shot over any vocabulary the text tower can read.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from ..registry import ConfigError
from .base import Arg, Inputs, Tool


def read_labels(labels) -> list[str]:
    """A list of label strings, or a path to a text file of one label per line."""
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        if not path.is_file():
            raise ConfigError(f"labels={labels!r}: give a list of labels or a text file with one label per line")
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not labels or not all(isinstance(x, str) and x for x in labels):
        raise ConfigError("labels must be a non-empty list of non-empty strings")
    return list(labels)


class LabelTagger(Tool):
    """A dual encoder as a zero-shot classifier over a label list."""

    name = "labels"
    description = "Says which of a list of labels the image shows, with probabilities (a zero-shot classifier)."
    args = {  # noqa: RUF012
        "top_k": Arg("integer", "how many labels to return", 3, False, 1, 20),
        "labels": Arg("array", "the labels to choose from (default: the tool's own list)"),
    }
    timeout = 30.0

    def __init__(self, model, labels, templates=("a photo of a {}.",), timeout: float | None = None):
        super().__init__(timeout)
        if not (hasattr(model, "embed_images") and hasattr(model, "embed_texts")):
            raise ConfigError(f"the labels tool needs a dual encoder (embed_images / embed_texts), got {type(model)}")
        self.model = model.eval()
        self.labels = read_labels(labels)
        self.templates = list(templates)
        if not all("{}" in t for t in self.templates):
            raise ConfigError("every template needs a {} slot for the label, e.g. 'a photo of a {}.'")
        self._classifiers: dict[tuple, torch.Tensor] = {}
        self._lock = threading.Lock()

    @torch.no_grad()
    def classifier(self, labels: list[str]) -> torch.Tensor:
        """[L, E]: one normalised text embedding per label, averaged over the templates."""
        key = tuple(labels)
        if key not in self._classifiers:
            texts = [t.format(label) for label in labels for t in self.templates]
            emb = self.model.embed_texts(texts).float().view(len(labels), len(self.templates), -1).mean(1)
            self._classifiers[key] = torch.nn.functional.normalize(emb, dim=-1)
        return self._classifiers[key]

    @torch.no_grad()
    def probabilities(self, image, labels: list[str]) -> torch.Tensor:
        with self._lock:
            img = self.model.embed_images([image]).float()  # [1, E]
            scale = float(getattr(self.model, "logit_scale", 100.0))
            return (scale * img @ self.classifier(labels).T)[0].softmax(-1)  # [L]

    def run(self, inputs: Inputs, top_k: int = 3, labels: list | None = None) -> str:
        if inputs.image is None:
            raise ValueError("there is no image to tag")
        labels = self.labels if labels is None else labels
        if not labels or not all(isinstance(x, str) and x for x in labels):
            raise ValueError("labels must be a non-empty list of strings")
        p = self.probabilities(inputs.image, list(labels))
        vals, idx = p.topk(min(top_k, len(labels)))
        return ", ".join(f"{labels[int(i)]} {float(v):.2f}" for v, i in zip(vals, idx))


def build_label_tagger(model: str, labels, templates=None, timeout: float | None = None) -> LabelTagger:
    """The labels tool from a saved dual encoder directory (e.g. runs/lit-fashion-mnist/final)."""
    from ..models import load_model

    return LabelTagger(load_model(model), labels, templates or ("a photo of a {}.",), timeout)
