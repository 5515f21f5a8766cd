"""Claim: with both towers locked (LiT-style head training), the feature cache makes epochs 2+ several times faster.

A DualEncoder with the pretrained EfficientNet-Lite0 vision tower and MiniLM text tower, both locked; only the head
(projections, logit scale) trains. The same steps (collate + forward + backward + AdamW) run twice on the same
samples: cache off (both towers run every step) and cache on (epoch 1 fills the cache; afterwards the towers and
the image preprocessing are skipped). Prints steps/s of each and their ratio, and checks the losses agree.

    .venv/bin/python benchmarks/lit_feature_cache.py [--samples 64 --batch 16 --epochs 3 --image-size 64]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from PIL import Image

from modalign.config import ModelConfig
from modalign.encoders.cache import FeatureCache
from modalign.models.dual_encoder import DualEncoder

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black"]
SHAPES = ["circle", "square", "triangle", "star"]


def make_samples(n: int, size: int) -> list[dict]:
    """Photo-sized random images (decoded and resized by collate, as real data would be) with short captions."""
    rng = np.random.default_rng(0)
    return [
        {
            "id": f"s{i}",
            "image": Image.fromarray(rng.integers(0, 255, (size * 2, size * 2, 3), dtype=np.uint8)),
            "text": f"a {COLOURS[i % 8]} {SHAPES[(i // 8) % 4]} number {i}",
        }
        for i in range(n)
    ]


def build(image_size: int) -> DualEncoder:
    torch.manual_seed(0)
    cfg = ModelConfig(
        kind="dual",
        vision={"name": "efficientnet-lite0", "image_size": image_size},
        text={"name": "minilm", "max_length": 32},
        embed_dim=128,
        loss="clip",
    )
    model = DualEncoder.from_config(cfg)
    model.lock("vision")
    model.lock("text")
    model.train()
    return model


def run(samples: list[dict], batch: int, epochs: int, image_size: int, cache: FeatureCache | None) -> dict:
    model = build(image_size)
    model.enable_feature_cache(cache)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    times, losses = [], []
    for _ in range(epochs):
        epoch_times = []
        for a in range(0, len(samples), batch):  # same order every epoch: identical work for both variants
            start = time.perf_counter()
            out = model.training_loss(model.collate(samples[a : a + batch]), "contrastive")
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            epoch_times.append(time.perf_counter() - start)
            losses.append(out["loss"].item())
        times.append(epoch_times)
    return {"times": times, "losses": losses}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--image-size", type=int, default=64)
    args = ap.parse_args()
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2: epoch 1 fills the cache, later epochs measure it")
    torch.set_num_threads(1)
    samples = make_samples(args.samples, args.image_size)

    off = run(samples, args.batch, args.epochs, args.image_size, None)
    cache = FeatureCache()
    on = run(samples, args.batch, args.epochs, args.image_size, cache)

    def rate(epoch_times: list[list[float]]) -> float:
        steps = sum(len(e) for e in epoch_times)
        return steps / sum(sum(e) for e in epoch_times)

    later_off, later_on = rate(off["times"][1:]), rate(on["times"][1:])
    print(
        f"LiT head training: efficientnet-lite0 ({args.image_size}px) + minilm, both locked; "
        f"{args.samples} samples, batch {args.batch}, {args.epochs} epochs, 1 thread"
    )
    print(f"{'variant':<34}{'steps/s':>10}")
    print(f"{'cache off, all epochs':<34}{rate(off['times']):>10.2f}")
    print(f"{'cache on, epoch 1 (fills cache)':<34}{rate(on['times'][:1]):>10.2f}")
    print(f"{'cache off, epochs 2+':<34}{later_off:>10.2f}")
    print(f"{'cache on, epochs 2+ (hits)':<34}{later_on:>10.2f}")
    print(
        f"speed-up of epochs 2+ with the cache: {later_on / later_off:.1f}x "
        f"(cache: {len(cache)} entries, {cache.hits} hits, {cache.misses} misses)"
    )
    diff = max(abs(a - b) for a, b in zip(off["losses"], on["losses"]))
    print(f"agreement: max |loss diff| over {len(off['losses'])} steps = {diff:.2e}")
    if diff > 1e-4:
        raise SystemExit("cached and uncached training diverged: the cache changed what the model computes")


if __name__ == "__main__":
    main()
