"""Do a describer's visual tokens hold the objects its descriptions leave out? Read them out through the LM's words.

The region-word loss (models/region_words.py) trains each connector token under an object to score that object's
words highest in softmax(token . E^T) over the LM's input embeddings. This script reads that out on held-out scenes:
per object, the log-probabilities of its cells are averaged, and the object's shape (colour) is read as the shape
(colour) word of highest mean log-probability over its tokens. It then generates each scene's description and splits
the objects into named and left out (by sentence subjects, as scripts/caption_errors.py reads them). A readout that
is as right for the objects left out as for those named says the tokens carry them and the LM skipped them; one that
is wrong for them says the miss starts in what the connector gives the LM.

    OMP_NUM_THREADS=1 python scripts/region_readout.py runs/llava-shapes-describe/final --scenes 500
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caption_errors import PROMPT, subjects  # noqa: E402  (a sibling script, not a package)

from modalign.data.render import render  # noqa: E402
from modalign.data.vocab import COLOR_NAMES, SHAPES  # noqa: E402
from modalign.eval.pair_guide import word_scores  # noqa: E402
from modalign.models.region_words import cell_targets, check_grid  # noqa: E402


def object_cells(objects: list[dict], width: int, height: int, side: int) -> list[list[int]]:
    """Per object, the grid cells whose centre lies in its box and that no later-drawn object covers (as the
    region-word loss assigns them)."""
    regions = [{"box": o["box"], "text": str(k)} for k, o in enumerate(objects)]
    owned = cell_targets(regions, width, height, side, lambda text: [int(text)])
    cells: list[list[int]] = [[] for _ in objects]
    for cell, (k,) in owned:
        cells[k].append(cell)
    return cells


def read_objects(tokens: torch.Tensor, embedding: torch.Tensor, cells: list[list[int]],
                 shape_ids: list[list[int]], colour_ids: list[list[int]]) -> list[tuple[str | None, str | None]]:
    """tokens [M, D] of one image -> per object (colour, shape) read from its cells' mean log-softmax over the
    vocabulary; (None, None) for an object without a cell of its own."""
    logp = F.log_softmax(tokens @ embedding.t(), dim=-1)                               # [M, V]
    out = []
    for cs in cells:
        if not cs:
            out.append((None, None))
            continue
        mean = logp[cs].mean(0)
        out.append((COLOR_NAMES[int(word_scores(mean, colour_ids).argmax())],
                    SHAPES[int(word_scores(mean, shape_ids).argmax())]))
    return out


def named_flags(description: str, objects: list[dict]) -> list[bool]:
    """Per object, whether a sentence subject names its colour and shape (k objects of one pair need k subjects;
    the first ones in drawing order count as named)."""
    _, said = subjects(description)
    left = Counter(said)
    flags = []
    for o in objects:
        key = (o["color"], o["shape"])
        flags.append(left[key] > 0)
        left[key] -= 1
    return flags


def tally(model, world, batch_size: int = 16, max_new_tokens: int = 128) -> dict[str, Counter]:
    """{"named" | "left out": Counter(objects, shape, colour, both, no_cell)} over the world's scenes."""
    side = check_grid(model.prompts.tokens_per_image)
    word = model._region_word_ids
    shape_ids, colour_ids = [word(s) for s in SHAPES], [word(c) for c in COLOR_NAMES]
    embedding = model.lm.get_input_embeddings().weight
    out = {"named": Counter(), "left out": Counter()}
    with torch.no_grad():
        for lo in range(0, len(world), batch_size):
            scenes = [world.scene(i) for i in range(lo, min(lo + batch_size, len(world)))]
            images = [render(s) for s in scenes]
            pixel_values, _, _ = model.image_inputs(images)  # one grid per image: main refuses AnyRes tiling
            tokens = model.image_embeddings(pixel_values)
            descriptions = model.generate(images, [PROMPT] * len(scenes), max_new_tokens=max_new_tokens)
            for scene, image, toks, text in zip(scenes, images, tokens, descriptions):
                objs = scene["objects"]
                cells = object_cells(objs, image.size[0], image.size[1], side)
                read = read_objects(toks, embedding, cells, shape_ids, colour_ids)
                for o, (colour, shape), named in zip(objs, read, named_flags(text, objs)):
                    c = out["named" if named else "left out"]
                    c["objects"] += 1
                    c["no_cell"] += shape is None
                    c["shape"] += shape == o["shape"]
                    c["colour"] += colour == o["color"]
                    c["both"] += shape == o["shape"] and colour == o["color"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--scenes", type=int, default=200)
    args = ap.parse_args(argv)
    if args.scenes < 1:
        ap.error(f"--scenes must be >= 1, got {args.scenes}")
    from modalign.data.shapes import ShapesWorld
    from modalign.models import load_model

    torch.set_num_threads(1)
    model = load_model(args.checkpoint).eval()
    if getattr(model, "fusion", None) != "prefix":
        ap.error(f"{args.checkpoint} is not a prefix-fusion vision-language model: nothing to read out")
    if model.tiler is not None:
        ap.error(f"{args.checkpoint} tiles images (AnyRes): the readout needs one grid of tokens per image")
    world = ShapesWorld(task="caption", caption="detailed", n=args.scenes, split=args.split)
    counts = tally(model, world)
    print("objects    count  shape read  colour read  both  (no cell of its own)")
    for name, c in counts.items():
        n = max(c["objects"], 1)
        print(f"{name:<9} {c['objects']:>6}  {c['shape'] / n:>10.3f}  {c['colour'] / n:>11.3f}  "
              f"{c['both'] / n:.3f}  ({c['no_cell']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
