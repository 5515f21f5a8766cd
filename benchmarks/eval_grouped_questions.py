"""Claim: the vqa / pope suites' answering helper (`eval.suites.common.generate`) is faster when it groups the
questions by image and answers each group through `answer_many` (image and prompt prefix encoded once, their KV
cache shared) than when it batches every (image, question) row on its own, as it did before - with identical answers.

Both paths run in the same process on the same rows: POPE's six questions per image (3 present, 3 absent objects,
random sampler) over shapes-world scenes, batch size 16, greedy, on one thread. The model is tiny but not trivial:
a CLIP-style tower of 4 layers on 224-pixel images (256 image tokens) and a 4-layer, 256-wide LM.

Run: .venv/bin/python benchmarks/eval_grouped_questions.py [--images 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import CLIPVisionConfig, CLIPVisionModel

from modalign.config import ModelConfig
from modalign.data import DATASETS
from modalign.eval.suites.common import generate
from modalign.models.vlm import VisionLanguageModel

torch.set_num_threads(1)
MAX_NEW, BATCH = 8, 16
LM = dict(
    name="tiny-llama",
    hidden_size=256,
    num_layers=4,
    num_heads=4,
    intermediate_size=768,
    max_position_embeddings=512,
    vocab_size=512,
)


def build(tmp: Path, corpus: list[str]) -> VisionLanguageModel:
    torch.manual_seed(0)
    clip = CLIPVisionConfig(
        image_size=224,
        patch_size=14,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=4,
        num_attention_heads=4,
    )
    CLIPVisionModel(clip).save_pretrained(tmp / "clip")
    cfg = ModelConfig.model_validate(
        {
            "kind": "vlm",
            "connector": {"name": "mlp"},
            "lm": LM,
            "vision": {"name": "hf", "path": str(tmp / "clip"), "feature_layer": -2},
        }
    )
    model = VisionLanguageModel.from_config(cfg, text_corpus=corpus).eval()
    with torch.no_grad():  # a sharper random LM: answers of varied length instead of near-ties
        model.base_lm().lm_head.weight.mul_(4)
    return model


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=16, help="scenes (six questions each)")
    args = parser.parse_args()
    data = DATASETS["shapes"](task="pope", n=args.images, split="test", image_size=64, pope_samplers="random")
    rows = [data[i] for i in range(len(data))]
    images = [r["image"] for r in rows]
    prompts = [r["question"] + " Answer with a single word or phrase." for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp), list(data.texts()))
        generate(model, images[:6], prompts[:6], BATCH, 2, progress=False)  # warm-up both paths
        generate(model, images[:6], prompts[:6], BATCH, 2, progress=False, group_by_image=False)
        plain, t_plain = timed(lambda: generate(model, images, prompts, BATCH, MAX_NEW, False, group_by_image=False))
        grouped, t_grouped = timed(lambda: generate(model, images, prompts, BATCH, MAX_NEW, False))
    n = len(rows)
    same = sum(a == b for a, b in zip(grouped, plain))
    print(
        f"{n} questions about {args.images} images, {model.prompts.tokens_per_image} image tokens, "
        f"<= {MAX_NEW} new tokens, "
        f"batch {BATCH}, LM {sum(p.numel() for p in model.base_lm().parameters()) / 1e6:.2f}M params"
    )
    print(f"  ungrouped (every row batched alone): {t_plain:.2f} s  ({n / t_plain:.1f} questions/s)")
    print(f"  grouped by image (answer_many):      {t_grouped:.2f} s  ({n / t_grouped:.1f} questions/s)")
    print(f"  speed-up: {t_plain / t_grouped:.2f}x; answers identical: {same}/{n}")


if __name__ == "__main__":
    main()
