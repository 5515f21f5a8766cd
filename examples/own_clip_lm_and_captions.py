"""Bring your own CLIP, your own causal LM and your own image/caption data: train a LLaVA-style connector, evaluate
its captions, save, load.

    python examples/own_clip_lm_and_captions.py --clip /models/clip-vit-b32 --lm /models/qwen2-0.5b \
        --captions data/captions.csv --out runs/my-llava

`--captions` is a CSV (columns image,text) or JSONL file whose image paths are relative to the file's folder (or
to --images). The CLIP tower and the LM stay frozen; only the MLP connector trains (LLaVA's first stage).
"""

from __future__ import annotations

import argparse

import modalign as ma


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clip", required=True, help="a local CLIP / SigLIP / ViT checkpoint directory")
    p.add_argument("--lm", default="smollm2-135m", help="an LM name (modalign list lms) or a local checkpoint dir")
    p.add_argument("--captions", required=True, help="captions CSV or JSONL")
    p.add_argument("--images", help="image root (default: the captions file's folder)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", default="runs/own-clip-lm")
    args = p.parse_args(argv)

    # parts by path or name: the CLIP checkpoint is the `hf` vision tower, the LM the `hf` (or a packaged) LM
    model = ma.VisionLanguageModel(vision=args.clip, connector="mlp", lm=args.lm)
    data = ma.dataset("image-captions", path=args.captions, image_root=args.images)
    align = ma.Stage(
        name="align",
        objective="caption",
        data=data,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=1e-3,
        warmup_steps=min(20, args.steps // 10),
        train=["connector"],
    )
    ma.train(model, [align], args.out)

    result = ma.evaluate(model, "caption", data, limit=32, max_new_tokens=24)
    print({k: round(v, 4) for k, v in result["metrics"].items()})
    again = ma.load(f"{args.out}/final")  # the frozen CLIP and LM are named in the save, not copied
    print("reloaded:", again.generate([data[0]["image"]], max_new_tokens=16)[0])
    return result


if __name__ == "__main__":
    main()
