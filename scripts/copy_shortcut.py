"""How often would copying from the text write a description's next object right? Measured on training descriptions.

A describer that has written "a large cyan hexagon" and then "... is a small cyan" can take the shape from the image
or copy the word that followed "cyan" earlier in its own text. This counts, over the descriptions a data spec trains
on, each sentence subject (a size, colour and shape, e.g. "small cyan hexagon"): whether its colour word was written
before in the description, and if so whether the shape that followed the last such colour word is the subject's own.
Where copying is nearly always right, the data teach it; a scene with two objects of one colour then gets one shape
twice. Data options are ShapesWorld's (docs/DATA.md), e.g. `--option describe_relations=earlier`.

Given a checkpoint, a describer is asked where its shape comes from: fed the true description of each scene of
`--split` (in the data spec's wording) up to a subject's colour word, where an object of that colour but another shape
was named before, it picks the likeliest of the shape words (`score`); then the same, with that earlier shape word
replaced in the text by a third shape that no object of the scene has. A pick that follows the replacement is copied
from the text; one that stays on the other object's shape is read from the image (or from the colour alone).

    python scripts/copy_shortcut.py --scenes 3000 --option describe_order=reading --option where_first_p=1.0
    OMP_NUM_THREADS=1 python scripts/copy_shortcut.py runs/E1/final --split heldout --scenes 500 \
        --option describe_order=reading --option where_first_p=1.0 --option describe_relations=earlier
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

import yaml

from modalign.data.vocab import COLOR_NAMES, SHAPES, SIZES

PROMPT = "Describe the image in detail."  # as scripts/caption_errors.py asks

_MENTION = re.compile(rf"\b(?:({'|'.join(SIZES)}) )?({'|'.join(COLOR_NAMES)}) ({'|'.join(SHAPES)})\b")


def _mentions(text: str):
    """(match, size or None, colour, shape, the shape after this colour's last earlier mention or None) for each
    colour-shape mention in order; a sized one is a sentence's subject (relation tails name their object unsized)."""
    last: dict[str, str] = {}
    for m in _MENTION.finditer(text):
        size, color, shape = m.groups()
        yield m, size, color, shape, last.get(color)
        last[color] = shape


def copy_cases(description: str) -> list[bool | None]:
    """Per sentence subject (a sized colour-shape mention), in order: None if its colour was not written before, else
    whether the shape after the colour's last earlier mention is the subject's shape."""
    return [None if before is None else before == shape
            for _, size, _, shape, before in _mentions(description.lower()) if size]


def shortcut_rates(descriptions) -> dict:
    cases = [c for d in descriptions for c in copy_cases(d)]
    told = [c for c in cases if c is not None]
    return {"subjects": len(cases), "colour written before": len(told) / max(len(cases), 1),
            "copy right": sum(told) / max(len(told), 1)}


def conflict_cases(description: str, scene_shapes) -> list[dict]:
    """Subjects whose colour an object of another shape had earlier in the text: {prefix (up to the shape word), true
    shape, other (the shape after the colour's last earlier mention), swapped (the prefix with every earlier
    "colour other" made "colour third"), third (the first shape, in SHAPES order, neither in the scene nor either)}."""
    out = []
    for m, size, color, shape, other in _mentions(description):
        if size and other is not None and other != shape:
            third = next(s for s in SHAPES if s not in scene_shapes and s not in (shape, other))
            prefix = description[: m.start(3)]
            swapped = re.sub(rf"\b{color} {other}\b", f"{color} {third}", prefix)
            out.append({"prefix": prefix, "true": shape, "other": other, "swapped": swapped, "third": third})
    return out


def pick_shapes(model, image, prefixes: list[str]) -> list[str]:
    """The shape word the model finds likeliest after each prefix (log p of prefix + shape, summed)."""
    import torch

    picks = []
    with torch.no_grad():
        for prefix in prefixes:
            logp = model.score([image] * len(SHAPES), [prefix + s for s in SHAPES], [PROMPT] * len(SHAPES),
                               normalize=False)
            picks.append(SHAPES[int(logp.argmax())])
    return picks


def ask_model(model, world) -> Counter:
    """Counts over the world's conflict cases: picks on the true text (true / other / else) and on the swapped one
    (true / other / third / else)."""
    from modalign.data.render import render

    c = Counter()
    for i in range(len(world)):
        scene, record = world.scene(i), world.record(i)  # the text only: the image is rendered once, below
        text = next(t["value"] for t in record["conversations"] if t["from"] == "gpt")
        cases = conflict_cases(text, {o["shape"] for o in scene["objects"]})
        if not cases:
            continue
        image = render(scene)
        plain = pick_shapes(model, image, [k["prefix"] for k in cases])
        swapped = pick_shapes(model, image, [k["swapped"] for k in cases])
        for k, a, b in zip(cases, plain, swapped):
            c["cases"] += 1
            c["text: " + ("true" if a == k["true"] else "other" if a == k["other"] else "else")] += 1
            c["swapped: " + ("true" if b == k["true"] else "other" if b == k["other"]
                             else "third" if b == k["third"] else "else")] += 1
    return c


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"an option is KEY=VALUE (a ShapesWorld argument), got {text!r}")
    return key, yaml.safe_load(value)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", nargs="?", help="a describer to ask where its shapes come from (optional)")
    ap.add_argument("--scenes", type=int, default=3000)
    ap.add_argument("--split", default="train")
    ap.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                    help="a ShapesWorld data option, e.g. describe_relations=earlier (repeatable)")
    args = ap.parse_args(argv)
    from modalign.data.shapes import ShapesWorld

    options = {"describe_p": 1.0, "describe_at": "alone", **dict(args.option)}
    try:
        world = ShapesWorld(task="instruct", n=args.scenes, split=args.split, **options)
    except (TypeError, ValueError) as e:
        ap.error(str(e))
    texts = (turn["value"] for i in range(len(world)) for turn in world.record(i)["conversations"]
             if turn["from"] == "gpt")
    r = shortcut_rates(texts)
    print(f"{r['subjects']} subjects; colour written before in the description: {r['colour written before']:.3f}; "
          f"of those, the shape after its last mention is the subject's: {r['copy right']:.3f}")
    if args.checkpoint:
        import torch

        from modalign.models import load_model

        torch.set_num_threads(1)
        c = ask_model(load_model(args.checkpoint).eval(), world)
        n = max(c["cases"], 1)
        print(f"{c['cases']} subjects after another shape of their colour; picked on the true text: "
              + ", ".join(f"{k} {c['text: ' + k] / n:.3f}" for k in ("true", "other", "else"))
              + "; with that shape replaced by a third in the text: "
              + ", ".join(f"{k} {c['swapped: ' + k] / n:.3f}" for k in ("true", "other", "third", "else")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
