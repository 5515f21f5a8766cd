"""Tiny Hugging Face checkpoints and data folders written by tests: what a user would bring, at toy size."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    LlamaConfig,
    LlamaForCausalLM,
)

from modalign.data.worlds.shapes import ShapesWorld
from modalign.models.lm import train_tokenizer

CORPUS_WORLD = dict(task="caption", n=60, split="train", caption="short")


def save_tiny_clip(path: Path, image_size: int = 32) -> Path:
    """A random CLIP (vision 2 layers, width 32) with its image processor, as `CLIPModel.save_pretrained` writes."""
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=100
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(cfg).eval().save_pretrained(path)
    CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(path)
    return path


def save_tiny_lm(path: Path) -> Path:
    """A random 2-layer Llama with a byte-level BPE tokenizer that knows the shapes world's words."""
    torch.manual_seed(0)
    texts = list(ShapesWorld(**CORPUS_WORLD).texts()) + ["What color is the circle?", "Describe the image."]
    tok = train_tokenizer(texts, 400)
    tok.save_pretrained(path)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
    ).save_pretrained(path)
    return path


def write_caption_folder(path: Path, n: int = 24) -> Path:
    """PNG images + captions.csv (columns image,text), as a user's own caption data would be laid out."""
    (path / "images").mkdir(parents=True, exist_ok=True)
    ds = ShapesWorld(task="caption", n=n, split="train", caption="short", image_size=32)
    with open(path / "captions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "text"])
        for i in range(n):
            item = ds[i]
            name = f"images/{i:03d}.png"
            item["image"].save(path / name)
            w.writerow([name, item["text"]])
    return path / "captions.csv"
