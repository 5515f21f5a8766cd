"""Layer 5: models composed of towers, connectors and LMs. `build_model` from a config, `load_model` from a dir.

A saved model is a directory: `config.json` (`{"model": ModelConfig}`), `model.safetensors`, and for generative
models the tokenizer files. No pickle. `load_model` also takes a Hugging Face checkpoint directory (LLaVA, Idefics,
BLIP-2, CLIP, SigLIP) and wraps it for evaluation (hf_adapters/).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import ModelConfig
from ..registry import ConfigError


def build_model(cfg: ModelConfig, text_corpus=None):
    if cfg.kind == "dual":
        from .dual_encoder import DualEncoder

        return DualEncoder.from_config(cfg)
    from .vlm import VisionLanguageModel

    return VisionLanguageModel.from_config(cfg, text_corpus=text_corpus)


def load_model(directory: str | Path):
    directory = Path(directory)
    cfg_path = directory / "config.json"
    if not cfg_path.exists():
        raise ConfigError(f"{directory} is not a modalign model directory (no config.json)")
    raw = json.loads(cfg_path.read_text())
    if "model" not in raw:
        from .hf_adapters import hf_model_type, load_hf_model

        if hf_model_type(directory) is not None:
            return load_hf_model(directory)
        raise ConfigError(f"{cfg_path} has neither modalign's 'model' key nor a Hugging Face 'model_type'")
    cfg = ModelConfig.model_validate(raw["model"])
    if cfg.kind == "dual":
        from .dual_encoder import DualEncoder

        return DualEncoder.load(directory)
    from .vlm import VisionLanguageModel

    return VisionLanguageModel.load(directory)
