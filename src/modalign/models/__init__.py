"""Layer 5: models composed of towers, connectors and LMs. `build_model` from a config, `load_model` from a directory.

A saved model is a directory (models/saving.py): `config.json`, `model.safetensors` with what was trained,
`manifest.json`, and for generative models the tokenizer files. No pickle. `load_model` also takes a Hugging Face
checkpoint directory (LLaVA, Idefics, BLIP-2, CLIP, SigLIP) and wraps it for evaluation (hf_adapters/).
"""

from __future__ import annotations

from pathlib import Path

from ..config import ModelConfig
from ..registry import ConfigError, trusted_code
from .dual_encoder import DualEncoder
from .saving import load_weights_into, read_config, verify_files
from .vlm import VisionLanguageModel

__all__ = ["DualEncoder", "VisionLanguageModel", "build_model", "load_model"]


def build_model(cfg: ModelConfig, text_corpus=None):
    """A fresh model from a validated config (`text_corpus` trains a from-scratch LM's tokenizer)."""
    if cfg.kind == "dual":
        return DualEncoder.from_config(cfg)
    return VisionLanguageModel.from_config(cfg, text_corpus=text_corpus)


def load_model(directory: str | Path, trust_code: bool = False):
    """A saved model, in eval mode. Its files are checked against their recorded sha256; parts saved as a reference
    to a pretrained package are rebuilt and checked against the recorded hash. `trust_code` allows a model built
    from your own Python classes to import them (only for models you trust)."""
    directory = Path(directory)
    from .hf_adapters import hf_model_type, load_hf_model

    if hf_model_type(directory) is not None:  # someone else's checkpoint, wrapped for evaluation
        return load_hf_model(directory)
    meta = read_config(directory)
    verify_files(directory, meta)
    try:
        kind = ModelConfig.model_validate(meta["model"]).kind
    except ValueError as err:
        raise ConfigError(f"{directory}/config.json: the model config is not valid ({err})") from None
    cls = DualEncoder if kind == "dual" else VisionLanguageModel
    with trusted_code(trust_code):
        model = cls.rebuild(meta, directory)
    load_weights_into(model, directory, meta)
    model.eval()
    return model
