"""Text-only conversations mixed into the shapes instruction data (`text_only_p`), and training on such a mix."""

import numpy as np
import pytest
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
import torch
from test_vlm_tiny_parts import tiny_cfg

from modalign.config import validate_recipe
from modalign.data.worlds.shapes.splits import default_heldout_pairs
from modalign.data.worlds.shapes.world import TEXT_ONLY_PROMPTS, ShapesWorld
from modalign.models import build_model
from modalign.models.vlm_prompts import IGNORE_INDEX
from modalign.train import run_recipe

DESCRIBE = dict(describe_p=1.0, describe_at="alone", describe_order="reading", where_first_p=1.0)


def test_a_share_of_conversations_is_text_only_and_the_rest_stays_as_it_was():
    n, p = 1500, 0.3
    mixed = ShapesWorld(task="instruct", n=n, text_only_p=p, **DESCRIBE)
    plain = ShapesWorld(task="instruct", n=n, **DESCRIBE)
    text_only = [i for i in range(n) if mixed.record(i).get("text_only")]
    assert abs(len(text_only) - p * n) < 4 * np.sqrt(n * p * (1 - p)), len(text_only)  # within 4 sigma
    assert all(mixed.record(i) == plain.record(i) for i in range(200) if i not in text_only)
    item = mixed[text_only[0]]
    assert "image" not in item and "images" not in item and "regions" not in item
    human, gpt = item["conversations"]
    assert human["from"] == "human" and human["value"] in TEXT_ONLY_PROMPTS and "<image>" not in human["value"]
    assert gpt["from"] == "gpt" and " is a " in gpt["value"]  # a description of the imagined scene
    # imagined scenes draw from every colour-shape pair; the split's images never hold a held-out one
    words = " ".join(mixed.record(i)["conversations"][1]["value"] for i in text_only)
    assert all(f"{c} {s}" in words for c, s in default_heldout_pairs())
    image_words = " ".join(plain.record(i)["conversations"][1]["value"] for i in range(300))
    assert not any(f"{c} {s}" in image_words for c, s in default_heldout_pairs())


def test_text_only_p_is_checked():
    with pytest.raises(ValueError, match="text_only_p"):
        ShapesWorld(task="instruct", n=3, text_only_p=1.5)
    with pytest.raises(ValueError, match="applies to task 'instruct', not 'caption'"):
        ShapesWorld(task="caption", n=3, text_only_p=0.2)


def _recipe(steps=3):
    stage = {
        "name": "instruct",
        "objective": "instruct",
        "steps": steps,
        "batch_size": 6,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "instruct", "n": 12, "image_size": 32, "text_only_p": 0.5, **DESCRIBE},
        "train": ["connector", "lm"],
        "log_every": 1,
    }
    return validate_recipe({"name": "tiny-vlm", "seed": 0, "model": tiny_cfg("mlp").model_dump(), "stages": [stage]})


def test_a_batch_mixing_text_only_and_image_conversations_trains(tmp_path):
    recipe = _recipe()
    ds = ShapesWorld(task="instruct", n=12, image_size=32, text_only_p=0.5, **DESCRIBE)
    samples = [ds[i] for i in range(12)]
    n_images = sum("image" in s for s in samples)
    assert 0 < n_images < 12
    model = build_model(recipe.model, [t["value"] for s in samples for t in s["conversations"]])
    batch = model.collate(samples)
    assert batch["pixel_values"].shape[0] == n_images and batch["image_counts"] == [int("image" in s) for s in samples]
    marker = model.prompts.image_token_id
    for row, s in enumerate(samples):
        n_marked = int((batch["input_ids"][row] == marker).sum())
        assert n_marked == (model.num_vision_tokens if "image" in s else 0)
        assert (batch["labels"][row] != IGNORE_INDEX).sum() > 10  # the description is learned in both kinds
    loss = model.training_loss(batch, "instruct")["loss"]
    assert torch.isfinite(loss)
    run_recipe(recipe, tmp_path / "run")
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()
