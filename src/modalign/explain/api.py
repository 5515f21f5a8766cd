"""The front door: `explain(model, image, text)` -> one `Attribution` (a patch-grid map and where it peaks) per
word, phrase or the whole text, for a VisionLanguageModel (rollout or gradient) or a DualEncoder (gradient).

For a VLM the words are explained in context: the whole text is scored and each span's tokens are the target. A
DualEncoder has no token-level output, so each span is embedded on its own and its similarity to the image is
explained (for `spans="text"` that is the whole text).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import ConfigError
from .dual_attribution import dual_gradient_maps
from .overlay import peak_cell, peak_point, view_box
from .targets import resolve_spans
from .vlm_attribution import gradient_maps, rollout_maps

METHODS = ("rollout", "gradient")


@dataclass
class Attribution:
    label: str  # the explained word / phrase / text
    span: tuple[int, int]  # its characters in the text
    map: np.ndarray  # [h, w] over the vision tower's patch grid
    peak: tuple[int, int]  # (row, col) of the map's maximum
    point: tuple[float, float]  # that cell's centre in the original image's pixels (x, y)


def model_kind(model) -> str:
    from ..models.dual_encoder import DualEncoder
    from ..models.vlm import VisionLanguageModel

    if isinstance(model, VisionLanguageModel):
        return "vlm"
    if isinstance(model, DualEncoder):
        return "dual"
    raise ConfigError(f"explain works on a VisionLanguageModel or a DualEncoder, not {type(model).__name__}")


def default_method(model) -> str:
    """Rollout where it applies (a prefix-fusion VLM), the gradient map otherwise."""
    return "rollout" if model_kind(model) == "vlm" and model.fusion == "prefix" else "gradient"


def explain(
    model, image, text: str, method: str | None = None, spans="words", prompt: str | None = None, on: str | None = None
) -> list[Attribution]:
    """Attribution maps for `spans` of `text` ("words", "text", or a list of phrases / (start, end) spans).

    method: "rollout" (VLM, prefix fusion) or "gradient"; `prompt`: a VLM question the text answers (default: the
    caption format); `on`: where gradients are taken ("tokens" | "pixels" for a VLM, "layer" | "pixels" for a
    DualEncoder).
    """
    kind = model_kind(model)
    method = method or default_method(model)
    if method not in METHODS:
        raise ConfigError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    span_list = resolve_spans(text, spans)
    if kind == "dual":
        if method != "gradient":
            raise ConfigError("a DualEncoder is explained with method='gradient' (it has no LM attention to roll out)")
        if prompt is not None:
            raise ConfigError("a DualEncoder takes no prompt: the text itself is compared with the image")
        maps = dual_gradient_maps(model, image, [text[a:b] for a, b in span_list], on=on)
    elif method == "rollout":
        if on is not None:
            raise ConfigError("`on` chooses where gradients are taken; it does not apply to method='rollout'")
        maps = rollout_maps(model, image, text, span_list, prompt)
    else:
        maps = gradient_maps(model, image, text, span_list, prompt, on=on or "tokens")
    box = view_box(model.vision, image.size)
    return [
        Attribution(label=text[a:b], span=(a, b), map=m, peak=peak_cell(m), point=peak_point(m, box))
        for (a, b), m in zip(span_list, maps)
    ]
