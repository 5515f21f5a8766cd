"""How often would copying from the text write a description's next object right? Measured on training descriptions.

A describer that has written "a large cyan hexagon" and then "... is a small cyan" can take the shape from the image
or copy the word that followed "cyan" earlier in its own text. This counts, over the descriptions a data spec trains
on, each sentence subject (a size, colour and shape, e.g. "small cyan hexagon"): whether its colour word was written
before in the description, and if so whether the shape that followed the last such colour word is the subject's own.
Where copying is nearly always right, the data teach it; a scene with two objects of one colour then gets one shape
twice. Data options are ShapesWorld's (docs/DATA.md), e.g. `--option describe_relations=earlier`.

    python scripts/copy_shortcut.py --scenes 3000 --option describe_order=reading --option where_first_p=1.0
"""

from __future__ import annotations

import argparse
import re

import yaml

from modalign.data.vocab import COLOR_NAMES, SHAPES, SIZES

_MENTION = re.compile(rf"\b(?:({'|'.join(SIZES)}) )?({'|'.join(COLOR_NAMES)}) ({'|'.join(SHAPES)})\b")


def copy_cases(description: str) -> list[bool | None]:
    """Per sentence subject (a sized colour-shape mention), in order: None if its colour was not written before, else
    whether the shape after the colour's last earlier mention is the subject's shape."""
    out, earlier = [], []  # earlier: (colour, shape) mentions so far, sized or not
    for m in _MENTION.finditer(description.lower()):
        size, color, shape = m.groups()
        if size:  # a sentence's subject; relation tails name their object without its size
            before = [s for c, s in earlier if c == color]
            out.append(before[-1] == shape if before else None)
        earlier.append((color, shape))
    return out


def shortcut_rates(descriptions) -> dict:
    cases = [c for d in descriptions for c in copy_cases(d)]
    told = [c for c in cases if c is not None]
    return {"subjects": len(cases), "colour written before": len(told) / max(len(cases), 1),
            "copy right": sum(told) / max(len(told), 1)}


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"an option is KEY=VALUE (a ShapesWorld argument), got {text!r}")
    return key, yaml.safe_load(value)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    texts = (turn["value"] for i in range(len(world)) for turn in world[i].get("conversations", [])
             if turn["from"] == "gpt")
    r = shortcut_rates(texts)
    print(f"{r['subjects']} subjects; colour written before in the description: {r['colour written before']:.3f}; "
          f"of those, the shape after its last mention is the subject's: {r['copy right']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
