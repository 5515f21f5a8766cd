"""Evaluate models modalign did not train: a local Hugging Face checkpoint directory behind the eval interface.

`load_hf_model(dir)` reads `config.json`'s `model_type` and wraps the checkpoint with its own processor
(AutoProcessor: image processing, image-token expansion, chat template):
- generative (`generate`, `score`): llava, idefics2, idefics3, blip-2 -> `HFVisionLanguageModel`;
- contrastive (`embed_images`, `embed_texts`, `logit_scale`): clip, siglip -> `HFDualEncoder`.
`models.load_model(dir)` comes here when the directory is an HF checkpoint (its config.json has `model_type` /
`architectures`) rather than a modalign save (a top-level "model" key), so `modalign eval DIR ...` takes either.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...registry import ConfigError
from .contrastive import HFDualEncoder
from .generative import HFVisionLanguageModel

GENERATIVE = ("llava", "idefics2", "idefics3", "blip-2")
CONTRASTIVE = ("clip", "siglip")


def hf_model_type(directory: str | Path) -> str | None:
    """The checkpoint's `model_type` if `directory` is a Hugging Face checkpoint, None for a modalign save."""
    path = Path(directory) / "config.json"
    if not path.is_file():
        return None
    try:
        cfg = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return None  # a damaged file: read_config names it
    if not isinstance(cfg, dict) or "model" in cfg or not ("model_type" in cfg or "architectures" in cfg):
        return None
    return str(cfg.get("model_type", ""))


def load_hf_model(directory: str | Path):
    """The adapter for a local HF checkpoint directory (weights in float32, eval mode, nothing downloaded)."""
    kind = hf_model_type(directory)
    if kind is None:
        raise ConfigError(f"{directory} is not a Hugging Face checkpoint directory (no config.json with model_type)")
    if kind in GENERATIVE:
        return HFVisionLanguageModel.from_pretrained(directory, kind)
    if kind in CONTRASTIVE:
        return HFDualEncoder.from_pretrained(directory, kind)
    raise ConfigError(
        f"{directory}: model_type {kind!r} has no adapter; supported: {', '.join(GENERATIVE + CONTRASTIVE)}"
    )


__all__ = ["CONTRASTIVE", "GENERATIVE", "HFDualEncoder", "HFVisionLanguageModel", "hf_model_type", "load_hf_model"]
