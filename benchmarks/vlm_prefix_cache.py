"""Claim: answering N questions about one image with the image prefix encoded once (its KV cache shared across a
batch of questions, `VisionLanguageModel.answer_many`) is >= 3x faster than transformers'
`LlavaForConditionalGeneration.generate` called once per question on the same weights (exported with
`export_llava_hf`), which re-encodes the image and re-reads the 256-token image prefix every time. The LM is
SmolLM2-135M-Instruct (the packaged default), the tower a CLIP ViT (224 px, patch 14; LLaVA exports need a
transformers tower), the connector LLaVA's mlp.

Both run greedy decoding on one thread in the same process; the script also checks that both give the same
answers, and times modalign's own `generate` one by one (no prefix reuse, no batching) to separate the two effects.

Run: .venv/bin/python benchmarks/vlm_prefix_cache.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModel, LlavaForConditionalGeneration
from transformers.utils import logging as hf_logging

from modalign.config import ModelConfig
from modalign.models.export_llava import export_llava_hf
from modalign.models.vlm import VisionLanguageModel

torch.set_num_threads(1)
hf_logging.disable_progress_bar()
N_QUESTIONS, MAX_NEW = 32, 8
OBJECTS = ["circle", "square", "triangle", "star", "cross", "ring", "heart", "moon"]
COLORS = ["red", "green", "blue", "yellow", "purple", "orange"]
QUESTIONS = [f"Is there a {c} {o} in the image?" for c in COLORS for o in OBJECTS][:N_QUESTIONS]


def build(tmp: Path) -> VisionLanguageModel:
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
            "lm": {"name": "smollm2-135m"},
            "vision": {"name": "hf", "path": str(tmp / "clip"), "feature_layer": -2},
            "system_prompt": "You are a helpful assistant.",
        }
    )
    return VisionLanguageModel.from_config(cfg).eval()


def llava_one_by_one(llava, model, image) -> list[str]:
    pixels = model.vision.preprocess([image])
    stop = model.stop_token_ids()
    answers = []
    for q in QUESTIONS:
        ids = torch.tensor([model.prompts.encode(model.prompts.chat_prefix(q))[0]])
        out = llava.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=pixels,
            max_new_tokens=MAX_NEW,
            do_sample=False,
            eos_token_id=stop,
            pad_token_id=model.prompts.pad_id,
        )
        answers += model._detok(out[:, ids.shape[1] :])
    return answers


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t


def main() -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build(tmp)
        llava = LlavaForConditionalGeneration.from_pretrained(export_llava_hf(model, tmp / "llava")).eval()
        with torch.no_grad():
            model.answer_many(image, QUESTIONS[:2], max_new_tokens=2)  # warm-up both paths
            llava_one_by_one(llava, model, image)
            ours, t_ours = timed(lambda: model.answer_many(image, QUESTIONS, max_new_tokens=MAX_NEW))
            ref, t_ref = timed(lambda: llava_one_by_one(llava, model, image))
            single, t_single = timed(
                lambda: [model.generate([image], [q], max_new_tokens=MAX_NEW)[0] for q in QUESTIONS]
            )
    same = sum(a == b for a, b in zip(ours, ref))
    print(
        f"{N_QUESTIONS} questions about one image, {model.prompts.tokens_per_image} image tokens, "
        f"<= {MAX_NEW} new tokens, LM {sum(p.numel() for p in model.base_lm().parameters()) / 1e6:.2f}M params"
    )
    print(f"  transformers LLaVA generate, one by one: {t_ref:.2f} s")
    print(f"  modalign generate, one by one:           {t_single:.2f} s")
    print(f"  modalign answer_many (prefix KV reuse):  {t_ours:.2f} s")
    print(
        f"  speed-up vs LLaVA one by one: {t_ref / t_ours:.1f}x (goal >= 3x); answers identical: {same}/{len(ours)}"
        f"; same as modalign one by one: {sum(a == b for a, b in zip(ours, single))}/{len(ours)}"
    )


if __name__ == "__main__":
    main()
