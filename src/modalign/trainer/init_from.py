"""`init_from`: a recipe whose first stage starts from a saved model (weights and tokenizer) instead of fresh ones.

This is how a run is continued with new stages (more instruction tuning, another dataset) without retraining what
it already learned, as LLaVA's fine-tuning starts from the aligned projector of its pretraining run. The saved
model's config must equal the recipe's `model:`, so the weights fit and the tokenizer is the one they were trained
with (it is taken from the directory, never retrained on the new recipe's text).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..config import ModelConfig, RecipeConfig
from ..registry import ConfigError


def check_init_from(recipe: RecipeConfig) -> Path | None:
    """The directory `recipe.init_from` names, checked before any weight is loaded (None if the recipe has none)."""
    if recipe.init_from is None:
        return None
    directory = Path(recipe.init_from)
    cfg_path = directory / "config.json"
    if not cfg_path.exists() or not (directory / "model.safetensors").exists():
        raise ConfigError(
            f"init_from: {directory} is not a saved model directory (config.json + model.safetensors, "
            "e.g. runs/NAME/final); train the run it names first or fix the path"
        )
    # through the schema, so fields added since the model was saved compare at their defaults
    saved = ModelConfig.model_validate(json.loads(cfg_path.read_text())["model"]).model_dump(mode="json")
    wanted = recipe.model.model_dump(mode="json")
    if saved != wanted:
        diff = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        raise ConfigError(
            f"init_from: the model saved in {directory} differs from this recipe's `model:` in "
            f"{diff}; copy the saved model's settings (its config.json) into `model:`"
        )
    return directory
