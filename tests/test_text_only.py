"""A vision-language model trains on a mix of text-only and image conversations (as LLaVA-1.5 mixes text-only
instruction data into its own): a sample without `image`, whose turns hold no `<image>`, is learned as text."""

import numpy as np
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
import torch
from PIL import Image
from test_vlm_tiny_parts import tiny_cfg

from modalign.config import validate_recipe
from modalign.models import build_model
from modalign.models.vlm_prompts import IGNORE_INDEX
from modalign.trainer import run_recipe


class TextAndImages:
    """n LLaVA-format conversations; every other one has no image (and no `<image>` marker)."""

    def __init__(self, n: int = 12):
        rng = np.random.default_rng(0)
        colors = ["red", "green", "blue", "yellow"]
        self.rows = []
        for i in range(n):
            color = colors[i % len(colors)]
            if i % 2:
                self.rows.append(
                    {
                        "id": f"text-{i}",
                        "conversations": [
                            {"from": "human", "value": "Describe a made-up picture of shapes."},
                            {"from": "gpt", "value": f"A large {color} circle sits above a small blue square."},
                        ],
                    }
                )
            else:
                pixels = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
                self.rows.append(
                    {
                        "id": f"image-{i}",
                        "image": Image.fromarray(pixels),
                        "conversations": [
                            {"from": "human", "value": "<image>\nDescribe the image."},
                            {"from": "gpt", "value": f"There is a small {color} star on the left of a square."},
                        ],
                    }
                )

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return dict(self.rows[i])

    def texts(self):
        for row in self.rows:
            yield from (t["value"] for t in row["conversations"])


def _recipe(steps=3):
    stage = {
        "name": "instruct",
        "objective": "instruct",
        "steps": steps,
        "batch_size": 6,
        "lr": 0.01,
        "data": {"name": "text-and-images", "n": 12},
        "train": ["connector", "lm"],
        "log_every": 1,
    }
    return validate_recipe({"name": "tiny-vlm", "seed": 0, "model": tiny_cfg("mlp").model_dump(), "stages": [stage]})


def test_a_batch_mixing_text_only_and_image_conversations_trains(tmp_path):
    recipe = _recipe()
    ds = TextAndImages(12)
    samples = [ds[i] for i in range(12)]
    n_images = sum("image" in s for s in samples)
    assert 0 < n_images < 12
    model = build_model(recipe.model, list(ds.texts()))
    batch = model.collate(samples)
    assert batch["pixel_values"].shape[0] == n_images and batch["image_counts"] == [int("image" in s) for s in samples]
    marker = model.prompts.image_token_id
    for row, s in enumerate(samples):
        n_marked = int((batch["input_ids"][row] == marker).sum())
        assert n_marked == (model.num_vision_tokens if "image" in s else 0)
        assert (batch["labels"][row] != IGNORE_INDEX).sum() > 5  # the answer is learned in both kinds
    loss = model.training_loss(batch, "instruct")["loss"]
    assert torch.isfinite(loss)
    run_recipe(recipe, tmp_path / "run", progress=False, datasets={"text-and-images": TextAndImages})
    assert (tmp_path / "run" / "final" / "model.safetensors").exists()
