"""Which layer of a CNN tower can a VLM read objects from? A per-object linear probe on the shapes world.

For every object of a scene, take the tower's feature cell under the object's centre at several depths of
EfficientNet-Lite0 and fit a logistic regression for the object's colour, shape and size: trained on the `train`
split, tested on `heldout` (colour-shape pairs never seen in training, so a probe that only memorised pairs fails).
The answer decides the VLM recipes' `feature_block`.

    OMP_NUM_THREADS=1 python scripts/tower_probe.py                      # 1,500 train / 400 held-out scenes
    OMP_NUM_THREADS=1 python scripts/tower_probe.py --data-size 128 --train 500 --test 200
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np
import torch


def cells(tower, images, blocks) -> dict:
    """{block index or "head": [B, C, h, w]} for a batch of PIL images, from one pass of the tower (eval mode):
    hooks catch the chosen blocks' outputs, the tower's own tokens are the head."""
    maps = {}
    hooks = [tower.net._blocks[i].register_forward_hook(lambda mod, inp, out, i=i: maps.__setitem__(i, out))
             for i in blocks]
    try:
        with torch.no_grad():
            tokens = tower(tower.preprocess(images)).tokens  # [B, h*w, C], row-major cells
    finally:
        for h in hooks:
            h.remove()
    b, n, c = tokens.shape
    maps["head"] = tokens.transpose(1, 2).reshape(b, c, *tower.grid_size)
    return maps


def collect(tower, split: str, n: int, data_size: int, blocks, batch: int = 64):
    from modalign.data.shapes import shapes_dataset

    ds = shapes_dataset(task="caption", split=split, n=n, image_size=data_size)
    feats: dict = {}
    labels = []
    for start in range(0, n, batch):
        recs = [ds[i] for i in range(start, min(n, start + batch))]
        maps = cells(tower, [r["image"] for r in recs], blocks)
        for j, r in enumerate(recs):
            for obj in r["meta"]["scene"]["objects"]:
                cx, cy = obj["center"]
                for k, fmap in maps.items():
                    g = fmap.shape[-1]
                    gx, gy = min(int(cx / data_size * g), g - 1), min(int(cy / data_size * g), g - 1)
                    feats.setdefault(k, []).append(fmap[j, :, gy, gx].numpy())
                labels.append((obj["color"], obj["shape"], obj["size"]))
    return {k: np.stack(v) for k, v in feats.items()}, np.array(labels)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--image-size", type=int, default=128, help="tower input size (the recipes use 128)")
    p.add_argument("--data-size", type=int, default=64, help="rendered scene size (the recipes use 64)")
    p.add_argument("--train", type=int, default=1500, help="train-split scenes")
    p.add_argument("--test", type=int, default=400, help="held-out-split scenes")
    p.add_argument("--blocks", default="4,7,10,15", help="MBConv blocks to probe (0..15); the head is always probed")
    args = p.parse_args(argv)
    from sklearn.linear_model import LogisticRegression

    from modalign.modalities.efficientnet import build_efficientnet_lite0

    torch.set_num_threads(1)
    blocks = [int(b) for b in args.blocks.split(",")]
    tower = build_efficientnet_lite0(image_size=args.image_size).eval()
    xtr, ytr = collect(tower, "train", args.train, args.data_size, blocks)
    xte, yte = collect(tower, "heldout", args.test, args.data_size, blocks)
    print(f"objects: {len(ytr)} train, {len(yte)} held-out; tower {args.image_size} px, scenes {args.data_size} px")
    print("| features | channels | grid | colour | shape | size |\n|---|---|---|---|---|---|")
    sample = cells(tower, [tower_image(args.data_size)], blocks)
    for k in [*blocks, "head"]:
        accs = []
        for a in range(3):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lbfgs may stop at max_iter; the held-out score is what counts
                clf = LogisticRegression(max_iter=300).fit(xtr[k], ytr[:, a])
            accs.append(clf.score(xte[k], yte[:, a]))
        name = f"block {k}" if k != "head" else "head (default)"
        g = sample[k].shape[-1]
        print(f"| {name} | {xtr[k].shape[1]} | {g}x{g} | {accs[0]:.3f} | {accs[1]:.3f} | {accs[2]:.3f} |", flush=True)
    return 0


def tower_image(size: int):
    from PIL import Image

    return Image.new("RGB", (size, size), (128, 128, 128))


if __name__ == "__main__":
    sys.exit(main())
