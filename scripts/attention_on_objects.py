"""Where does a trained VLM look when it answers? Attention from the answer position to the asked object's cells.

For held-out VQA questions of one type about the shapes world, run the prompt through the LM with eager attention
and, for every layer and head, measure (a) the share of the last prompt token's attention that goes to image tokens
and (b) the part of that share on the cells under the asked object (cells overlapping its box). A uniform spread over
the image puts the "uniform" share printed last on those cells; a head that finds the object puts much more there.

    OMP_NUM_THREADS=1 python scripts/attention_on_objects.py runs/llava-shapes-long/final --qtype position

Works for prefix connectors that keep a square grid of cells (`linear`, `mlp`, `pixel-shuffle`).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from modalign.connectors.grid import square_side
from modalign.data.vqa import SHORT_ANSWER

ASKED_BY = {"color": ("shape",), "shape": ("color",), "position": ("color", "shape")}


def object_cells(box, grid: int, image_size: int) -> np.ndarray:
    """[grid * grid] bool, row-major: the cells of a grid x grid map over the image that overlap box [x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    step = image_size / grid
    edges = np.arange(grid) * step
    cols = (edges < x1) & (edges + step > x0)
    rows = (edges < y1) & (edges + step > y0)
    return (rows[:, None] & cols[None, :]).reshape(-1)


def asked_objects(scene: dict, question: str, qtype: str) -> list[dict]:
    """The objects a color / shape / position question is about (the words it names)."""
    words = set(question.lower().rstrip("?").split())
    return [o for o in scene["objects"] if all(o[k] in words for k in ASKED_BY[qtype])]


def attention_shares(model, world, rows: list[dict], qtype: str, prompt: str) -> dict:
    """{"image": [L, H] mean attention mass on image tokens, "on_object": [L, H] mean part of it on the asked object's
    cells, "uniform": that part under a uniform spread, "n": questions used}."""
    from modalign.explain.vlm_attribution import eager_attention

    per_image = model.prompts.tokens_per_image
    grid = square_side(per_image)
    if model.fusion != "prefix" or grid is None:
        raise SystemExit("attention_on_objects needs a prefix connector with a square grid of image tokens "
                         f"(got fusion {model.fusion!r} with {per_image} tokens per image)")
    image, on_obj, uniform = [], [], []
    for r in rows:
        scene = world.scene(int(r["id"].split("-")[-1]))
        objs = asked_objects(scene, r["question"], qtype)
        if not objs:
            continue
        cells = np.zeros(grid * grid, bool)
        for o in objs:
            cells |= object_cells(o["box"], grid, world.image_size)
        pixel_values, counts, token_counts, layouts = model._pixels([r["image"]])
        ids, _ = model._encode_rows(model._prompt_texts(1, [prompt.format(question=r["question"])], True),
                                    token_counts)
        ids = torch.tensor(ids)
        embeds = model.prepare_inputs(ids, pixel_values, counts, None, layouts)
        with torch.no_grad(), eager_attention(model.lm):
            out = model.lm(inputs_embeds=embeds, output_attentions=True)
        img = (ids[0] == model.image_token_id).nonzero().flatten()
        att = torch.stack([a[0, :, -1, img] for a in out.attentions]).numpy()     # [L, H, cells]
        mass = att.sum(-1)
        image.append(mass)
        on_obj.append(att[..., cells].sum(-1) / np.maximum(mass, 1e-12))
        uniform.append(cells.mean())
    if not image:
        raise SystemExit(f"no {qtype} question named an object of its scene")
    return {"image": np.mean(image, 0), "on_object": np.mean(on_obj, 0), "uniform": float(np.mean(uniform)),
            "n": len(image)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a trained VLM directory (a run's final/)")
    p.add_argument("--qtype", default="position", choices=sorted(ASKED_BY))
    p.add_argument("--split", default="heldout")
    p.add_argument("--scenes", type=int, default=100, help="VQA scenes to draw the questions from")
    p.add_argument("--prompt", default="{question} " + SHORT_ANSWER)
    args = p.parse_args(argv)

    from modalign.data.shapes import ShapesWorld
    from modalign.models import load_model

    model = load_model(args.checkpoint).eval()
    world = ShapesWorld(task="vqa", n=args.scenes, split=args.split)
    rows = [r for r in (world[i] for i in range(len(world))) if r["qtype"] == args.qtype]
    s = attention_shares(model, world, rows, args.qtype, args.prompt)
    print(f"{s['n']} {args.qtype} questions ({args.split}); last prompt token's attention, per head:")
    for layer, (mass, on) in enumerate(zip(s["image"], s["on_object"])):
        fmt = lambda xs: "[" + " ".join(f"{x:.3f}" for x in xs) + "]"
        print(f"  layer {layer}: on image {fmt(mass)}  of it on the asked object {fmt(on)}")
    print(f"  uniform spread over the image puts {s['uniform']:.3f} on the asked object")
    return 0


if __name__ == "__main__":
    sys.exit(main())
