"""Claim: LLaVA training on SmolLM2-135M-Instruct (frozen LM, trained mlp connector, cached tower features) runs at
>= 50% of the CPU's dense fp32 matmul FLOP/s, measured side by side in one run.

Measured: (a) a 2048 x 2048 fp32 matmul (2 * 2048^3 FLOPs), before and after; (b) full training steps (forward,
backward, AdamW) of modalign's VisionLanguageModel exactly as the `llava-shapes` recipe's align stage builds it:
EfficientNet-Lite0 block 7 at 64 px (16 visual tokens, features cached after the first step), an mlp connector with
positions, SmolLM2 frozen, batch 16 short captions of the shapes world (~40 tokens per row), in fp32 and under bf16
autocast (`precision: bf16`). FLOPs are counted analytically per step: the frozen LM's matmuls forward (2 per
multiply-accumulate) and backward to its inputs only (2 more; no weight gradients), the LM head only at the labelled
positions (which is all that `training_loss` computes), the connector's 6 per multiply-accumulate, and the
attention products (12 x layers x T^2 x d per sequence). Timings are best-of (the machine is shared). Prints the
ratios; no assertion.

Run: .venv/bin/python benchmarks/vlm_train_throughput.py
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from modalign.data import DATASETS
from modalign.encoders.cache import FeatureCache
from modalign.models.vlm import VisionLanguageModel
from modalign.trainer.step import autocast

torch.set_num_threads(1)
BATCH, STEPS = 16, 4


def matmul_flops_per_s(dtype=torch.float32, n: int = 2048, reps: int = 3) -> float:
    """Best of `reps` timings: the machine is shared, and the best run is the least disturbed one."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def build() -> VisionLanguageModel:
    torch.manual_seed(0)
    model = VisionLanguageModel(
        vision={"name": "efficientnet-lite0", "image_size": 64, "feature_block": 7},
        connector={"name": "mlp", "positions": True},
        lm="smollm2-135m",
        system_prompt="You are a helpful assistant.",
    )
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("connector."))
    model.train()
    model.vision.eval()
    model.lm.eval()  # frozen parts, as the trainer's freeze plan leaves them
    model.enable_feature_cache(FeatureCache())
    return model


def step_flops(model, batch) -> float:
    c = model.base_lm().config
    d, L, f, v = c.hidden_size, c.num_hidden_layers, c.intermediate_size, c.vocab_size
    kv = d // c.num_attention_heads * c.num_key_value_heads
    per_token = L * (d * d * 2 + d * kv * 2 + 3 * d * f)  # q, o + k, v + gate / up / down
    ids = batch["input_ids"]
    tokens = int(ids.numel())
    labelled = int((batch["labels"][:, 1:] != -100).sum())
    conn = model.connector
    per_image_token = conn.linear_1.in_features * conn.linear_1.out_features + conn.linear_2.in_features * d
    n_img_tokens = int((ids == model.image_token_id).sum())
    t = ids.shape[1]
    attention = 12 * L * t * t * d * ids.shape[0]
    return 4 * per_token * tokens + 4 * d * v * labelled + 6 * per_image_token * n_img_tokens + attention


def train_flops_per_s(model, batch, precision: str) -> tuple[float, float]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        with autocast(precision):
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
    return step_flops(model, batch) / per_step, per_step


def main() -> None:
    from modalign.trainer.step import native_bf16

    peak = matmul_flops_per_s()
    # emulated bf16 runs a 2048^2 matmul in ~1 min: where it is not native a 512^2 one says as much in a second
    bf16_n = 2048 if native_bf16() else 512
    peak_bf16 = matmul_flops_per_s(torch.bfloat16, n=bf16_n)
    print(
        f"matmul, 1 thread, best of 3: fp32 (2048^2) {peak / 1e9:.1f} GFLOP/s, bf16 ({bf16_n}^2) "
        f"{peak_bf16 / 1e9:.1f} GFLOP/s"
    )
    precisions = ("fp32", "bf16") if native_bf16() else ("fp32",)
    if len(precisions) == 1:  # emulated bf16 steps take minutes each: `precision: auto` trains in fp32 here
        print(f"no native bf16 on this CPU (bf16 matmul at {peak_bf16 / peak:.0%} of fp32): the bf16 step is not run")
    model = build()
    data = DATASETS["shapes"](task="caption", n=BATCH, split="train", caption="short")
    batch = model.collate([data[i] for i in range(BATCH)])
    shape = tuple(batch["input_ids"].shape)
    for precision in precisions:
        achieved, per_step = train_flops_per_s(model, batch, precision)
        ref = peak if precision == "fp32" else peak_bf16
        print(
            f"LLaVA step on SmolLM2 ({precision}), {model.num_vision_tokens} visual tokens, batch x tokens {shape}: "
            f"{per_step:.2f} s/step, {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of the fp32 matmul"
            + (" (goal >= 50%)" if precision == "fp32" else f", {achieved / ref:.0%} of the bf16 matmul")
        )
        if precision == "fp32":
            fp32_step = per_step
    if len(precisions) == 2:
        print(f"bf16 autocast step is {fp32_step / per_step:.2f}x faster than fp32")
    peak_after = matmul_flops_per_s()
    print(f"fp32 matmul again after the runs: {peak_after / 1e9:.1f} GFLOP/s (a shared machine drifts)")


if __name__ == "__main__":
    main()
