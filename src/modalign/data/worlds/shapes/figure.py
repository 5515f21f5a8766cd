"""Draw docs/figures/shapes-examples.png: a grid of shapes-world scenes with their short captions.

python -m modalign.data.worlds.shapes.figure --out docs/figures/shapes-examples.png
"""

from __future__ import annotations

import argparse
import textwrap

from .world import ShapesWorld


def examples_figure(out: str, n: int = 8, seed: int = 0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worlds = [
        ShapesWorld(task="caption", n=n, seed=seed, image_size=128, max_objects=4, background=bg)
        for bg in ("plain", "noise", "texture")
    ]
    fig, axes = plt.subplots(2, n // 2, figsize=(2.6 * (n // 2), 6.4))
    for k, ax in enumerate(axes.flat):
        ds = worlds[k % 3]
        item = ds[k]
        ax.imshow(item["image"], interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(item["text"], 28)), fontsize=8)
        ax.axis("off")
    fig.suptitle("modalign shapes world: scenes and derived captions (seed 0; plain / noise / texture)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="docs/figures/shapes-examples.png")
    args = p.parse_args()
    examples_figure(args.out)
    print(f"wrote {args.out}")
