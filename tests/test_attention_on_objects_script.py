"""scripts/attention_on_objects.py: the cell mask by hand, and shares that add up on a tiny model."""

from __future__ import annotations

import numpy as np
import torch

from modalign.config import ModelConfig
from modalign.data.shapes import ShapesWorld
from modalign.models.vlm import VisionLanguageModel

from script_loader import load_script


def _script():
    return load_script("attention_on_objects")


def test_object_cells_by_hand():
    s = _script()
    # a 4x4 grid over 64 px: cells of 16 px; box x 10..20, y 20..30 touches columns 0-1 of row 1 and nothing else
    cells = s.object_cells([10, 20, 20, 30], 4, 64).reshape(4, 4)
    want = np.zeros((4, 4), bool)
    want[1, 0] = want[1, 1] = True
    assert (cells == want).all()
    # an end-exclusive edge on a cell border does not reach into the next cell
    assert s.object_cells([0, 0, 16, 16], 4, 64).sum() == 1


def test_asked_objects_follow_the_question_words():
    s = _script()
    scene = {"objects": [{"color": "red", "shape": "star"}, {"color": "blue", "shape": "circle"}]}
    assert s.asked_objects(scene, "What color is the star?", "color") == [scene["objects"][0]]
    assert s.asked_objects(scene, "What shape is the blue object?", "shape") == [scene["objects"][1]]
    assert s.asked_objects(scene, "Where is the red circle?", "position") == []


def test_shares_on_a_tiny_model_are_fractions():
    s = _script()
    torch.manual_seed(0)
    cfg = ModelConfig.model_validate({
        "kind": "vlm", "vision": {"name": "efficientnet-lite0", "image_size": 64, "feature_block": 7},
        "connector": {"name": "mlp"},
        "lm": {"name": "tiny-llama", "hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
               "max_position_embeddings": 256, "vocab_size": 300}})
    world = ShapesWorld(task="vqa", n=6, split="heldout")
    corpus = [r["question"] for r in (world[i] for i in range(len(world)))]
    model = VisionLanguageModel.from_config(cfg, text_corpus=corpus).eval()
    rows = [r for r in (world[i] for i in range(len(world))) if r["qtype"] == "color"]
    out = s.attention_shares(model, world, rows, "color", "{question}")
    assert out["image"].shape == (2, 2) and out["on_object"].shape == (2, 2) and out["n"] == len(rows)
    assert ((out["image"] >= 0) & (out["image"] <= 1 + 1e-6)).all()
    assert ((out["on_object"] >= 0) & (out["on_object"] <= 1 + 1e-6)).all()
    assert 0 < out["uniform"] < 1
