"""The demo's RUN arguments: saved model directories or run folders, loaded once, named, fingerprinted, described."""

from __future__ import annotations

import pytest
import torch
from serve_models import save_run, tiny_dual

from modalign.registry import ConfigError
from modalign.serve.runs import fingerprint, load_served, resolve_run


def test_a_run_folder_or_its_final_directory_is_served_with_a_unique_name(tmp_path):
    save_run(tiny_dual(), tmp_path / "runs" / "siglip")
    tiny_dual().save_pretrained(tmp_path / "other" / "siglip")
    final = tmp_path / "runs" / "siglip" / "final"
    assert resolve_run(tmp_path / "runs" / "siglip") == final and resolve_run(final) == final
    with pytest.raises(ConfigError, match="neither a saved model"):
        resolve_run(tmp_path / "runs")
    served = load_served([tmp_path / "runs" / "siglip", final, tmp_path / "other" / "siglip"])
    assert [s.label for s in served] == ["siglip", "siglip-2", "siglip-3"]
    assert [s.kind for s in served] == ["dual"] * 3
    assert not served[0].model.training
    assert served[0].fingerprint == served[1].fingerprint  # the same save


def test_the_fingerprint_follows_the_weights(tmp_path):
    model = tiny_dual()
    model.save_pretrained(tmp_path / "a")
    model.save_pretrained(tmp_path / "b")
    assert fingerprint(tmp_path / "a") == fingerprint(tmp_path / "b")
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    model.save_pretrained(tmp_path / "b")
    assert fingerprint(tmp_path / "a") != fingerprint(tmp_path / "b")


def test_the_card_names_the_parts_and_the_training(tmp_path):
    save_run(tiny_dual(), tmp_path / "siglip")
    (card,) = [s.card for s in load_served([tmp_path / "siglip"])]
    assert card.startswith("**siglip** · dual encoder")
    assert "- vision: `vit` (image_size=16, patch_size=4" in card and "- text: `transformer`" in card
    assert "`siglip` loss" in card
    assert "- stage `instruct`: 100 steps, trains connector, lm, final loss 0.05" in card
    (tmp_path / "siglip" / "summary.json").write_text("{damaged")
    (damaged,) = [s.card for s in load_served([tmp_path / "siglip"])]
    assert "- vision: `vit`" in damaged and "Training" not in damaged
    tiny_dual().save_pretrained(tmp_path / "bare")
    (bare,) = [s.card for s in load_served([tmp_path / "bare"])]
    assert "Training" not in bare


def test_the_card_of_a_trained_run_reads_its_recipe_from_the_run_folder(tmp_path):
    import modalign as ma

    stage = {"name": "align", "objective": "contrastive", "data": {"name": "shapes", "n": 8, "image_size": 32}}
    stage.update(steps=2, batch_size=4, lr=0.002, train=["head"])
    ma.train(tiny_dual(), [stage], tmp_path / "lit", seed=3, progress=False)
    (card,) = [s.card for s in load_served([tmp_path / "lit"])]
    line = next(x for x in card.splitlines() if x.startswith("- stage"))
    assert line.startswith(
        "- stage `align`: objective contrastive, on shapes, 2 steps, lr 0.002, trains head, final loss"
    )
    assert "- seed 3" in card
