"""Claim: a VLM training step on a ~3.7M-parameter Llama LM runs at >= 50% of the CPU's dense-matmul FLOP/s.

Measured side by side in one run: (a) a 2048 x 2048 fp32 matmul (2 * 2048^3 FLOPs), (b) full training steps
(forward + backward + AdamW) of modalign's VisionLanguageModel with a frozen, cached vision tower, an mlp connector
and a from-scratch Llama (hidden 256, 4 layers), for 16 and 64 visual tokens. Step FLOPs are counted analytically:
6 x (matmul parameters touched per token) x tokens (+ the attention score/value products, 12 x L x T^2 x d per
sequence), the usual 2 (forward) + 4 (backward) per multiply-accumulate. Timings are best-of (the machine is shared).
Prints the ratio; no assertion.

Run: .venv/bin/python benchmarks/vlm_train_throughput.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image

from modalign.config import ModelConfig
from modalign.encoders.cache import FeatureCache
from modalign.models.vlm import VisionLanguageModel

torch.set_num_threads(1)
WORDS = [
    "a",
    "the",
    "red",
    "green",
    "blue",
    "yellow",
    "circle",
    "square",
    "triangle",
    "star",
    "left",
    "right",
    "above",
    "below",
    "small",
    "big",
    "two",
    "three",
]
LM = dict(
    name="tiny-llama",
    hidden_size=256,
    num_layers=4,
    num_heads=4,
    intermediate_size=768,
    max_position_embeddings=256,
    vocab_size=512,
)
BATCH, CAPTION_WORDS, STEPS = 8, 24, 6


def matmul_flops_per_s(n: int = 2048, reps: int = 3) -> float:
    """Best of `reps` timings: the machine is shared, and the best run is the least disturbed one."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def build(patch: int) -> VisionLanguageModel:
    rng = np.random.default_rng(0)
    corpus = [" ".join(rng.choice(WORDS, CAPTION_WORDS)) for _ in range(200)]
    cfg = ModelConfig.model_validate(
        {
            "kind": "vlm",
            "connector": {"name": "mlp"},
            "lm": LM,
            "vision": {
                "name": "vit",
                "image_size": 32,
                "patch_size": patch,
                "hidden_size": 64,
                "num_layers": 2,
                "num_heads": 2,
            },
        }
    )
    torch.manual_seed(0)
    model = VisionLanguageModel.from_config(cfg, text_corpus=corpus)
    for p in model.vision.parameters():
        p.requires_grad_(False)
    model.enable_feature_cache(FeatureCache())
    return model


def step_flops(model, batch) -> float:
    lm = model.base_lm()
    c = lm.config
    d, L, f, v = c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.vocab_size
    kv = d // c.num_attention_heads * c.num_key_value_heads
    per_token = L * (d * d * 2 + d * kv * 2 + 3 * d * f) + d * v  # q,o + k,v + gate/up/down + lm_head
    conn = model.connector
    per_token_conn = conn.linear_1.in_features * conn.linear_1.out_features + conn.linear_2.in_features * d
    tokens = int(batch["input_ids"].numel())
    n_img_tokens = int((batch["input_ids"] == model.image_token_id).sum())
    t = batch["input_ids"].shape[1]
    attention = 12 * L * t * t * d * batch["input_ids"].shape[0]
    return 6 * per_token * tokens + 6 * per_token_conn * n_img_tokens + attention


def train_flops_per_s(patch: int) -> tuple[float, int, int, float]:
    model = build(patch)
    rng = np.random.default_rng(1)
    samples = [
        {
            "id": str(i),
            "image": Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)),
            "text": " ".join(rng.choice(WORDS, CAPTION_WORDS)),
        }
        for i in range(BATCH)
    ]
    batch = model.collate(samples)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        loss = model.training_loss(batch, "caption")["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up, fills the feature cache
    per_step = float("inf")
    for _ in range(STEPS):  # best step, like the matmul's best run
        t = time.perf_counter()
        step()
        per_step = min(per_step, time.perf_counter() - t)
    n_params = sum(p.numel() for p in model.base_lm().parameters())
    return step_flops(model, batch) / per_step, model.num_vision_tokens, n_params, per_step


def main() -> None:
    peak = matmul_flops_per_s()
    print(f"2048^2 fp32 matmul: {peak / 1e9:.1f} GFLOP/s (1 thread, best of 3)")
    for patch in (8, 4):
        achieved, n_vis, n_params, per_step = train_flops_per_s(patch)
        print(
            f"VLM train step, LM {n_params / 1e6:.2f}M params, {n_vis} visual tokens, batch {BATCH}: "
            f"{per_step * 1e3:.0f} ms/step, {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of matmul "
            f"(goal >= 50%)"
        )
    peak_after = matmul_flops_per_s()
    print(
        f"matmul again after the runs: {peak_after / 1e9:.1f} GFLOP/s "
        f"(a shared machine drifts; against the higher of the two: {achieved / max(peak, peak_after):.0%})"
    )


if __name__ == "__main__":
    main()
