"""End to end: a from-scratch SigLIP dual encoder trained for a few hundred steps on shapes captions of one- and
two-object scenes points at the object a phrase names far more often than chance (and than before training).

Prints the hit rates and chance so they can be recorded (run with -s).
"""

from __future__ import annotations

import pytest
import torch

from modalign.config import validate_recipe
from modalign.data import DATASETS
from modalign.explain import pointing_game, pointing_items
from modalign.models import build_model, load_model
from modalign.trainer import run_recipe

SIZE = 32
RECIPE = {
    "name": "explain-pointing",
    "seed": 0,
    "model": {
        "kind": "dual",
        "loss": "siglip",
        "embed_dim": 32,
        "vision": {
            "name": "vit",
            "image_size": SIZE,
            "patch_size": 4,
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "pool": "mean",
        },
        "text": {"name": "transformer", "hidden_size": 64, "num_layers": 1, "num_heads": 4, "max_length": 24},
    },
    "stages": [
        {
            "name": "contrastive",
            "objective": "contrastive",
            "steps": 300,
            "batch_size": 32,
            "lr": 2e-3,
            "warmup_steps": 10,
            "train": ["vision", "text", "head"],
            "log_every": 50,
            "data": {
                "name": "shapes",
                "task": "caption",
                "n": 2000,
                "image_size": SIZE,
                "max_objects": 2,
                "synonym_p": 0.0,
            },
        }
    ],
}


@pytest.mark.slow
def test_trained_dual_encoder_points_at_the_named_object(tmp_path):
    torch.set_num_threads(1)
    recipe = validate_recipe(RECIPE)
    held_out = DATASETS["shapes"](task="caption", n=60, split="test", image_size=SIZE, max_objects=2, synonym_p=0.0)
    items = pointing_items(held_out)
    torch.manual_seed(0)
    before = pointing_game(build_model(recipe.model), items, method="gradient")
    run_recipe(recipe, tmp_path / "run", progress=False)
    after = pointing_game(load_model(tmp_path / "run" / "final"), items, method="gradient")
    pixels = pointing_game(load_model(tmp_path / "run" / "final"), items, method="gradient", on="pixels")
    print(
        f"\npointing game on {after['n']} object phrases of held-out 1-2 object scenes: "
        f"hit rate {after['hit_rate']:.3f} (last-layer gradient x input), {pixels['hit_rate']:.3f} (pixels), "
        f"untrained {before['hit_rate']:.3f}, chance {after['chance']:.3f}"
    )
    assert after["n"] >= 60
    assert after["hit_rate"] > 3 * after["chance"]
    assert after["hit_rate"] > before["hit_rate"] + 0.15
