"""The scripts in examples/ run as a user runs them (python examples/x.py ...), on tiny checkpoints and data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_checkpoints import save_tiny_clip, save_tiny_lm, write_caption_folder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("parts")
    return save_tiny_clip(root / "clip"), save_tiny_lm(root / "lm"), write_caption_folder(root / "data")


@pytest.mark.slow
def test_own_clip_lm_and_captions(parts, tmp_path):
    clip, lm, captions = parts
    out = _run(
        "own_clip_lm_and_captions.py",
        "--clip",
        str(clip),
        "--lm",
        str(lm),
        "--captions",
        str(captions),
        "--steps",
        "4",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "run"),
    )
    assert "CIDEr-D" in out and "reloaded:" in out
    saved = json.loads((tmp_path / "run" / "final" / "config.json").read_text())
    # the frozen CLIP tower and LM are named, not copied: the save holds the connector
    assert set(saved["references"]) == {"vision", "lm"}
    assert (tmp_path / "run" / "final" / "model.safetensors").stat().st_size < 100_000


@pytest.mark.slow
def test_custom_connector_round_trips(parts, tmp_path):
    _, lm, _ = parts
    out = _run("custom_connector.py", "--lm", str(lm), "--steps", "3", "--queries", "4", "--out", str(tmp_path / "r"))
    assert "CIDEr-D" in out
    spec = json.loads((tmp_path / "r" / "final" / "config.json").read_text())["model"]["connector"]
    assert spec == {"name": "module", "target": "my_parts.connectors:AttentionPool", "config": {"num_queries": 4}}


@pytest.mark.slow
def test_eval_own_vqa_file(parts, tmp_path):
    import modalign as ma

    clip, lm, _ = parts
    model = ma.VisionLanguageModel(vision=str(clip), connector="linear", lm=str(lm))
    model.save_pretrained(tmp_path / "model")
    ds = ma.dataset("shapes", task="vqa", n=4, split="heldout", image_size=32)
    lines = []
    for i in range(6):
        item = ds[i]
        item["image"].save(tmp_path / f"q{i}.png")
        lines.append(json.dumps({"image": f"q{i}.png", "question": item["question"], "answer": item["answer"]}))
    (tmp_path / "qs.jsonl").write_text("\n".join(lines))
    out = _run(
        "eval_own_vqa_file.py", str(tmp_path / "model"), str(tmp_path / "qs.jsonl"), "--out", str(tmp_path / "e")
    )
    metrics = json.loads(out[out.index("{") :])
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert (tmp_path / "e" / "gallery" / "vqa").is_dir()
