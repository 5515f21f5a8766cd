"""Tiny saved models and an image folder for the web demo's tests (imported by tests/test_serve*.py).

The VLM uses only registered parts (`vit`, `mlp`, `tiny-llama`), so a separate `modalign serve` process loads it;
a few dozen steps on two conversations make its greedy answers whole sentences the tests can predict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modalign.config import ModelConfig
from modalign.models import build_model

ANSWERS = {"red": "a red circle above a blue square", "green": "two green triangles"}
QUESTIONS = ["What is in the picture?", "What color is it?"]
CORPUS = [*ANSWERS.values(), *QUESTIONS, "yes", "no", "a small yellow star on the left"]

TINY_VLM = {
    "kind": "vlm",
    "vision": {"name": "vit", "image_size": 16, "patch_size": 4, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    "connector": {"name": "mlp"},
    "lm": {
        "name": "tiny-llama",
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 256,
        "vocab_size": 320,
    },
}
TINY_DUAL = {
    "kind": "dual",
    "embed_dim": 8,
    "loss": "siglip",
    "vision": {"name": "vit", "image_size": 16, "patch_size": 4, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    "text": {"name": "transformer", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "max_length": 16},
}


def colour_image(colour: str, size: tuple[int, int] = (40, 32)) -> Image.Image:
    return Image.new("RGB", size, colour)


def fitted_vlm(steps: int = 100):
    """A tiny VLM that answers every question about a red image with ANSWERS["red"], a green one with ...["green"]."""
    torch.manual_seed(0)
    model = build_model(ModelConfig.model_validate(TINY_VLM), text_corpus=CORPUS)
    samples = [
        {
            "id": f"{c}{j}",
            "image": colour_image(c),
            "conversations": [{"from": "human", "value": "<image>\n" + q}, {"from": "gpt", "value": a}],
        }
        for c, a in ANSWERS.items()
        for j, q in enumerate(QUESTIONS)
    ]
    batch = model.collate(samples)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model.training_loss(batch, "instruct")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def tiny_dual():
    torch.manual_seed(0)
    return build_model(ModelConfig.model_validate(TINY_DUAL)).eval()


def image_folder(root: Path, n: int = 12) -> Path:
    """`n` random-noise images in root/images/ with a captions.jsonl naming each, a caption-less extra, a file that
    only pretends to be a PNG, and a hidden folder the index must leave alone."""
    rng = np.random.default_rng(0)
    words = ["a red circle", "two blue squares", "a green triangle", "a yellow star"]
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        rel = f"images/{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / rel)
        lines.append(json.dumps({"id": str(i), "image": rel, "text": words[i % len(words)]}))
    (root / "captions.jsonl").write_text("\n".join(lines) + "\nnot json\n")
    colour_image("red").save(root / "extra.jpg")
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    (root / ".hidden").mkdir(exist_ok=True)
    colour_image("blue").save(root / ".hidden" / "skip.png")
    return root


def save_run(model, run_dir: Path) -> Path:
    """Save as a trainer would leave it (run_dir/final/) with a summary.json, so the page can describe its training."""
    model.save_pretrained(run_dir / "final")
    summary = {"stages": [{"name": "instruct", "steps": 100, "loss": 0.05, "trainable": ["connector", "lm"]}]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir
