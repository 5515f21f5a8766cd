"""The contrastive recipes: every one validates and builds, and a tiny siglip-shapes runs end to end through the CLI.

The end-to-end test shrinks siglip-shapes with `--set` (fewer steps, smaller batch, small eval sets) but keeps its
model and its eval list, runs `modalign train` in a subprocess exactly as a user would, and checks that the loss
falls and that results.json holds retrieval R@K, the compositional probe accuracies per type, Winoground and the
modality gap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modalign.config import load_recipe
from modalign.recipes import path as recipe_path

ROOT = Path(__file__).resolve().parents[1]
RECIPES_DIR = recipe_path("siglip-shapes").parent
RECIPES = ["siglip-shapes", "clip-shapes", "clip-fashion-mnist", "siglip-fashion-mnist"]


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_validates_and_trains_every_tower(name):
    recipe = load_recipe(RECIPES_DIR / f"{name}.yaml")
    assert recipe.name == name
    assert recipe.model.kind == "dual" and recipe.model.vision.name == "vit"
    assert recipe.model.text.name == "transformer"
    assert recipe.model.loss == ("siglip" if name.startswith("siglip") else "clip")
    # from scratch: both towers and the head train in the one stage
    assert [sorted(s.train) for s in recipe.stages] == [["head", "text", "vision"]]
    assert {e.suite for e in recipe.eval} >= (
        {"retrieval", "compositional", "winoground", "geometry"} if "shapes" in name else {"zeroshot", "geometry"}
    )


def test_shapes_recipes_differ_only_in_loss():
    a = load_recipe(RECIPES_DIR / "siglip-shapes.yaml")
    b = load_recipe(RECIPES_DIR / "clip-shapes.yaml")
    da, db = a.model.model_dump(), b.model.model_dump()
    assert (da.pop("loss"), db.pop("loss")) == ("siglip", "clip") and da == db
    sa, sb = a.stages[0].model_dump(), b.stages[0].model_dump()
    sa.pop("name"), sb.pop("name")
    assert sa == sb and a.eval == b.eval


def _tiny_overrides(recipe) -> list[str]:
    sets = [
        "stages.0.steps=30",
        "stages.0.batch_size=32",
        "stages.0.warmup_steps=5",
        "stages.0.log_every=5",
        "stages.0.data.n=2000",
    ]
    for i, ev in enumerate(recipe.eval):
        sets.append(f"eval.{i}.data.n={16 if ev.suite in ('compositional', 'winoground') else 40}")
    return sets


@pytest.mark.slow
def test_tiny_siglip_shapes_through_the_cli(tmp_path):
    recipe_path = RECIPES_DIR / "siglip-shapes.yaml"
    recipe = load_recipe(recipe_path)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "modalign.cli", "train", str(recipe_path), "--out", str(out)]
    for s in _tiny_overrides(recipe):
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r and "event" not in r]
    assert len(losses) == 6
    # SigLIP starts near 10 (bias -10: every positive pair costs ~log(1 + e^10)); a few dozen steps must cut it
    assert losses[0] > 5 and losses[-1] < 0.8 * losses[0], losses

    results = json.loads((out / "eval" / "results.json").read_text())["suites"]
    retrieval = [v for k, v in results.items() if k.startswith("retrieval")]
    assert {r["settings"]["data"]["split"] for r in retrieval} == {"heldout", "test"}
    for r in retrieval:
        for key in ("t2i_R@1", "i2t_R@1", "t2i_R@5", "t2i_R@10"):
            assert 0.0 <= r["metrics"][key] <= 1.0
        assert r["metrics"]["t2i_R@1"] <= r["metrics"]["t2i_R@5"] <= r["metrics"]["t2i_R@10"]
    probes = [v for k, v in results.items() if k.startswith("compositional")]
    assert probes
    for p in probes:
        for t in ("swap-att", "swap-obj", "replace-att", "replace-obj", "replace-rel"):
            assert 0.0 <= p["metrics"][f"acc_{t}"] <= 1.0
    wino = results["winoground"]["metrics"]
    assert set(wino) == {"text", "image", "group"} and wino["group"] <= min(wino["text"], wino["image"])
    assert results["geometry"]["metrics"]["gap_norm"] >= 0.0
    assert (out / "final" / "model.safetensors").is_file() and (out / "eval" / "report.html").is_file()
