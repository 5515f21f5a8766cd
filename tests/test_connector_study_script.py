"""scripts/connector_study.py end to end on a tiny budget: two processes' rows land in one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from script_loader import load_script

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.lm={name: tiny-llama, hidden_size: 32, num_layers: 2, num_heads: 2, intermediate_size: 64, "
    "max_position_embeddings: 256, vocab_size: 300}",
    "model.vision.image_size=64",  # block 7 at 64 px: a 4x4 grid, 16 tokens
    "stages.0.data.n=16", "stages.0.steps=2", "stages.0.batch_size=4",
    "stages.1.data.n=16", "stages.1.steps=2", "stages.1.batch_size=4",
    "eval.0.data.n=3", "eval.1.data.n=3",
]


def _study():
    return load_script("connector_study")


@pytest.mark.slow
def test_two_runs_fill_one_table(tmp_path):
    study = _study()
    args = ["--recipe", str(ROOT / "recipes" / "llava-shapes-long.yaml"), "--out", str(tmp_path)]
    sets = [a for s in TINY for a in ("--set", s)]
    assert study.main([*args, "--connectors", "mlp", *sets]) == 0
    assert study.main([*args, "--connectors", "qformer", *sets]) == 0  # as a second process would
    rows = json.loads((tmp_path / "connector_study.json").read_text())["rows"]
    assert [r["connector"] for r in rows] == ["mlp", "qformer"]  # both, in the study's order
    mlp, qformer = rows
    assert mlp["visual_tokens_in_sequence"] == 16 and qformer["visual_tokens_in_sequence"] == 16
    assert 0.0 <= mlp["vqa_accuracy"] <= 1.0 and qformer["pope_f1_random"] is not None
    assert qformer["connector_params"] > mlp["connector_params"] > 0
    table = (tmp_path / "connector_study.md").read_text()
    assert "| `mlp` |" in table and "| `qformer` |" in table
