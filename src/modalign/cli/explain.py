"""`modalign explain CHECKPOINT --image P --text "..." [--method rollout|gradient] [--out DIR]`.

Loads the model with `models.load_model`, writes one overlay PNG per word (or one for the whole text with
`--whole`) plus `peaks.json`, and prints where each map peaks (patch cell and image pixel).
"""

from __future__ import annotations

import json
import re
from pathlib import Path


def add_explain_parser(subparsers) -> None:
    p = subparsers.add_parser("explain", help="which image regions drove which words: attribution map overlays")
    p.add_argument("checkpoint", help="a saved model directory (e.g. runs/<recipe>/final)")
    p.add_argument("--image", required=True, help="an image file")
    p.add_argument("--text", required=True, help="the caption / answer to explain")
    p.add_argument(
        "--method",
        choices=("rollout", "gradient"),
        default=None,
        help="default: rollout for a prefix-fusion VLM, gradient otherwise",
    )
    p.add_argument(
        "--on",
        choices=("tokens", "pixels", "layer"),
        default=None,
        help="where gradients are taken (VLM: tokens|pixels, dual encoder: layer|pixels)",
    )
    p.add_argument("--prompt", default=None, help="VLM only: the question the text answers (default: caption)")
    p.add_argument("--whole", action="store_true", help="one map for the whole text instead of one per word")
    p.add_argument("--out", default="explain", help="output folder for the PNGs (default ./explain)")
    p.set_defaults(func=explain_main)


def _slug(text: str) -> str:
    return re.sub(r"[^\w-]+", "_", text).strip("_")[:40] or "text"


def explain_main(args) -> int:
    from ..data.images import open_image
    from ..explain.api import default_method, explain
    from ..explain.overlay import save_overlay, view_box
    from ..models import load_model

    image = open_image(Path(args.image), f"image {args.image}")  # BadRecord: modalign's main prints it, status 2
    model = load_model(args.checkpoint)
    attributions = explain(
        model,
        image,
        args.text,
        method=args.method,
        spans="text" if args.whole else "words",
        prompt=args.prompt,
        on=args.on,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    box = view_box(model.vision, image.size)
    rows = []
    h, w = attributions[0].map.shape
    print(f"{len(attributions)} map(s) on a {h}x{w} patch grid -> {out}")
    for k, a in enumerate(attributions):
        path = save_overlay(image, a.map, out / f"{k:02d}_{_slug(a.label)}.png", box=box, label=a.label)
        x, y = a.point
        print(
            f"  {a.label!r:>24}  peak cell (row {a.peak[0]}, col {a.peak[1]})  at pixel ({x:.0f}, {y:.0f})  "
            f"-> {path.name}"
        )
        rows.append(
            {
                "label": a.label,
                "span": list(a.span),
                "peak": list(a.peak),
                "point": [x, y],
                "png": path.name,
                "map": a.map.round(6).tolist(),
            }
        )
    (out / "peaks.json").write_text(
        json.dumps({"text": args.text, "method": args.method or default_method(model), "maps": rows}, indent=1)
    )
    return 0
