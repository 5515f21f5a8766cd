"""Region-word alignment: cells under a box learn the box's words in the LM's input embedding space."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.models.aux_losses import AUX_LOSSES
from modalign.models.region_words import cell_targets, check_grid, region_words_loss
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError


def test_cell_targets_by_hand():
    words = {"red star": [5, 6], "blue circle": [7, 8]}.__getitem__
    # a 4x4 grid on a 64 px image: cell centres at 8, 24, 40, 56
    regions = [
        {"box": [0, 0, 30, 20], "text": "red star"},  # centres x 8, 24 / y 8 -> cells 0, 1
        {"box": [20, 0, 64, 10], "text": "blue circle"},
    ]  # centres x 24, 40, 56 / y 8 -> cells 1, 2, 3 (on top)
    assert cell_targets(regions, 64, 64, 4, words) == [(0, [5, 6]), (1, [7, 8]), (2, [7, 8]), (3, [7, 8])]
    assert cell_targets([], 64, 64, 4, words) == []
    with pytest.raises(ValueError, match="no words"):
        cell_targets([{"box": [0, 0, 64, 64], "text": ""}], 64, 64, 4, lambda t: [])


def test_loss_matches_a_hand_computation():
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # one image, two cells, D = 2
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # V = 3
    loss, n = region_words_loss(tokens, table, [[(1, [1, 2])]])
    logits = [0.0, 2.0, 2.0]  # cell 1 . E^T
    lse = math.log(sum(math.exp(x) for x in logits))
    want = -0.5 * ((2.0 - lse) + (2.0 - lse))
    assert n == 1 and loss.item() == pytest.approx(want, abs=1e-6)
    zero, n0 = region_words_loss(tokens.requires_grad_(), table, [[]])
    assert n0 == 0 and zero.item() == 0.0 and zero.requires_grad


def test_training_loss_adds_the_weighted_region_term_and_trains_the_connector():
    torch.manual_seed(0)
    model = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    model.set_aux_losses([AUX_LOSSES["region_words"](weight=0.5)])
    assert model.num_vision_tokens == 4  # a 2x2 grid on the 16 px tiny tower
    sample = {
        "id": "s0",
        "image": images(1)[0],
        "text": "a red circle above a blue square",
        "regions": [{"box": [0, 0, 8, 8], "text": "red circle"}, {"box": [8, 8, 16, 16], "text": "blue square"}],
    }
    batch = model.collate([sample, {"id": "s1", "image": images(1, seed=1)[0], "text": "two green triangles"}])
    assert [len(t) for t in batch["region_targets"]] == [2, 0]
    out = model.training_loss(batch, "caption")
    assert out["loss"].item() == pytest.approx(out["lm_loss"].item() + 0.5 * out["region_words_loss"].item(), rel=1e-6)
    assert out["region_words_loss"].item() > 0
    # the region term alone reaches the connector
    model.zero_grad()
    img = model.image_embeddings(batch["pixel_values"])
    loss, _ = region_words_loss(img, model.lm.get_input_embeddings().weight, batch["region_targets"])
    loss.backward()
    assert model.connector.linear_1.weight.grad.abs().sum() > 0
    # without the auxiliary loss nothing changes: the plain objective, no region keys
    plain = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    assert "region_targets" not in plain.collate([sample]) and "region_words_loss" not in plain.training_loss(
        plain.collate([sample]), "caption"
    )


def test_region_words_needs_a_square_grid_of_prefix_tokens():
    assert check_grid(64) == 8
    with pytest.raises(ConfigError, match="square grid"):
        check_grid(32)
    xattn = VisionLanguageModel.from_config(tiny_cfg("xattn"), text_corpus=CORPUS)
    with pytest.raises(ConfigError, match="prefix connector"):
        xattn.set_aux_losses([AUX_LOSSES["region_words"](weight=1.0)])
    with pytest.raises(ConfigError, match="weight must be > 0"):
        AUX_LOSSES["region_words"](weight=0)


def test_a_stage_names_the_auxiliary_loss_and_logs_it(tmp_path):
    from modalign.config import validate_recipe
    from modalign.trainer import run_recipe

    stage = {
        "name": "align",
        "objective": "caption",
        "steps": 2,
        "batch_size": 2,
        "lr": 0.01,
        "log_every": 1,
        "data": {"name": "shapes", "task": "caption", "n": 8, "image_size": 32},
        "train": ["connector"],
        "aux_losses": [{"name": "region_words", "weight": 0.5}],
    }
    recipe = validate_recipe({"name": "t", "model": tiny_cfg().model_dump(), "stages": [stage]})
    run_recipe(recipe, tmp_path, progress=False)
    logged = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [r for r in logged if "loss" in r and "event" not in r]
    assert steps and all("region_words_loss" in r and "lm_loss" in r for r in steps)
    bad = {**stage, "aux_losses": [{"name": "regions"}]}
    with pytest.raises(ConfigError, match="unknown auxiliary loss 'regions'; choose one of: region_words"):
        run_recipe(validate_recipe({"name": "t", "model": tiny_cfg().model_dump(), "stages": [bad]}), tmp_path / "b")


def test_shapes_regions_name_every_object_in_drawing_order():
    from modalign.data.worlds.shapes import ShapesWorld

    world = ShapesWorld(task="instruct", n=3, seed=2)
    item, scene = world[0], world.scene(0)
    assert [r["box"] for r in item["regions"]] == [list(o["box"]) for o in scene["objects"]]
    for r, o in zip(item["regions"], scene["objects"]):
        assert r["text"] == f"{o['size']} {o['color']} {o['shape']} {o['position']}"
    assert ShapesWorld(task="caption", n=3, seed=2)[0]["regions"] == item["regions"]  # the same scene, one region each
