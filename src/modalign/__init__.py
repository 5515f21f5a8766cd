"""modalign: align other modalities with language.

Three paths, one toolkit: contrastive dual encoders (CLIP, SigLIP, LiT), connectors into a causal language model
(LLaVA, BLIP-2, Flamingo) trained in stages, and the measurements of both.

    import modalign as ma
    model = ma.VisionLanguageModel(vision="efficientnet-lite0", connector="mlp", lm="smollm2-135m")
    ma.train(model, [ma.Stage(name="align", objective="caption", data=my_dataset, steps=200, train=["connector"])],
             "runs/mine")
    print(ma.evaluate(model, "vqa", my_questions)["metrics"])
    model = ma.load("runs/mine/final")

Names are imported on first use, so `import modalign` stays light.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "DualEncoder": ("modalign.models.dual_encoder", "DualEncoder"),
    "VisionLanguageModel": ("modalign.models.vlm", "VisionLanguageModel"),
    "VisionEncoder": ("modalign.encoders.base", "VisionEncoder"),
    "TextEncoder": ("modalign.encoders.base", "TextEncoder"),
    "AudioEncoder": ("modalign.encoders.base", "AudioEncoder"),
    "EncoderOutput": ("modalign.encoders.base", "EncoderOutput"),
    "Stage": ("modalign.config", "StageConfig"),
    "LoraConfig": ("modalign.config", "LoraConfig"),
    "ConfigError": ("modalign.registry", "ConfigError"),
    "BadRecord": ("modalign.data.records", "BadRecord"),
    "TrainingDiverged": ("modalign.trainer.guard", "TrainingDiverged"),
    # untrusted images (files, bytes, a web demo's uploads): pixel limit, EXIF, 16-bit; BadRecord when unusable
    "open_image": ("modalign.data.images", "open_image"),
    "prepare_image": ("modalign.data.images", "prepare_image"),
    "set_max_image_pixels": ("modalign.data.images", "set_max_image_pixels"),
    "load": ("modalign.api", "load"),
    "train": ("modalign.api", "train"),
    "evaluate": ("modalign.api", "evaluate"),
    "dataset": ("modalign.api", "dataset"),
    "run_recipe": ("modalign.api", "run_recipe"),
    "components": ("modalign.api", "components"),
    "list_recipes": ("modalign.recipes", "available"),
    "recipe_path": ("modalign.recipes", "path"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'modalign' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
