"""Evaluate with the feature cache a run filled: a locked tower's features are computed once for train AND eval.

Only sound when no stage trained the tower (its cached features are still what the tower computes) — LiT is the
case that matters: the eval then pays for nothing but the heads. Entries are keyed by image content and text, so an
eval set that shares pictures with the training set (e.g. a linear probe's training split) reuses them too.
"""

from __future__ import annotations

from pathlib import Path

from ..config import TOWER_NAMES, RecipeConfig
from ..encoders.cache import FeatureCache


def training_feature_cache(recipe: RecipeConfig, out_dir) -> FeatureCache | None:
    if recipe.model.kind != "dual":
        return None  # generative models key their cache by sample id, which eval items do not share
    last = recipe.stages[-1]
    if not last.cache_frozen_features or any(c in s.train for s in recipe.stages for c in TOWER_NAMES):
        return None
    directory = Path(out_dir) / "cache" / "frozen"  # the trainer's cache while no stage trained a tower
    return FeatureCache(directory) if directory.exists() else None


def prepare_for_eval(model, recipe: RecipeConfig, out_dir):
    """Freeze the loaded model (evaluation trains nothing) and attach the run's cache where it is sound."""
    model.requires_grad_(False)
    cache = training_feature_cache(recipe, out_dir)
    if cache is not None:
        model.enable_feature_cache(cache)
    return model
