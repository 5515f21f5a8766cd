"""Text-only upper bound on the shapes world: the LM is given the scene's true detailed description in words instead
of the image, then asked the held-out VQA questions with the eval suites' prompt; scored with modalign's VQA metric.

  OMP_NUM_THREADS=1 python research/smollm2-shapes/text_only.py --lm smollm2-135m --scenes 40
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import modalign as ma
from modalign.data.worlds.shapes.language import detailed_caption
from modalign.data.worlds.shapes.vqa import SHORT_ANSWER
from modalign.eval import metrics as M


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lm", default="smollm2-135m")
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--system-prompt", default="You are a helpful assistant.")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = ma.VisionLanguageModel(
        vision={"name": "efficientnet-lite0", "image_size": 64, "feature_block": 7},
        lm=args.lm,
        system_prompt=args.system_prompt,
    ).eval()
    ds = ma.dataset("shapes", task="vqa", split="heldout", n=args.scenes)
    prompts, answers, qtypes = [], [], []
    for i in range(len(ds)):
        rec = ds.record(i)
        scene = ds.scene(rec["scene_index"])
        desc = detailed_caption(scene, np.random.default_rng(i))
        prompts.append(f"{desc}\n{rec['question']} {SHORT_ANSWER}")
        answers.append(rec["answer"])
        qtypes.append(rec["qtype"])
    preds = []
    for lo in range(0, len(prompts), 16):
        preds += model.generate(None, prompts[lo : lo + 16], max_new_tokens=8)
    s = M.vqa_score(preds, answers, qtypes)
    print(json.dumps({"lm": args.lm, "n": len(preds), "accuracy": s["accuracy"], **s["per_qtype"]}, indent=1))
    for p, a, q in list(zip(preds, answers, prompts))[:12]:
        print(repr(q[-90:]), "->", repr(p), "| truth", a)


if __name__ == "__main__":
    main()
