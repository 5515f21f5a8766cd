"""`captioner`: a trained modalign vision-language model describing the image in a sentence.

Any saved VisionLanguageModel (a LLaVA / BLIP-2 / Flamingo run's `final/`) is a tool: it answers `prompt` about the
image with greedy decoding. A captioner trained on one world only knows that world; the tool's description says so
when it is built with `knows=`.
"""

from __future__ import annotations

import threading

from ..registry import ConfigError
from .base import Arg, Inputs, Tool


class Captioner(Tool):
    """A vision-language model describing the image."""

    name = "captioner"
    description = "Describes the image in a sentence."
    args = {"prompt": Arg("string", "what to ask the captioning model", "Describe the image.")}  # noqa: RUF012
    timeout = 60.0

    def __init__(self, model, max_new_tokens: int = 48, knows: str | None = None, timeout: float | None = None):
        super().__init__(timeout)
        if not hasattr(model, "generate"):
            raise ConfigError(f"the captioner needs a vision-language model (generate), got {type(model).__name__}")
        self.model = model.eval()
        self.max_new_tokens = max_new_tokens
        if knows:
            self.description = f"Describes the image in a sentence (it knows {knows})."
        self._lock = threading.Lock()

    def run(self, inputs: Inputs, prompt: str = "Describe the image.") -> str:
        if inputs.image is None:
            raise ValueError("there is no image to describe")
        with self._lock:
            return self.model.generate([inputs.image], [prompt], max_new_tokens=self.max_new_tokens)[0]


def build_captioner(model: str, max_new_tokens: int = 48, knows: str | None = None, timeout: float | None = None):
    """The captioner from a saved vision-language model directory."""
    from ..models import load_model

    return Captioner(load_model(model), max_new_tokens, knows, timeout)
