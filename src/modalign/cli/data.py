"""`modalign data ...`: generate built-in data on disk.

modalign data shapes --out data/shapes-train --n 10000 --split train --seed 0
modalign data shapes --out data/shapes-conf --n 2000 --split confounded   # writes confounded-train/ and -test/
"""

from __future__ import annotations

import json

CLI_SPLITS = ("train", "test", "heldout", "confounded", "confounded-train", "confounded-test")


def add_data_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="generate built-in datasets on disk")
    sub = p.add_subparsers(dest="data_command", required=True)
    s = sub.add_parser("shapes", help="the shapes world: images, captions, conversations, VQA, POPE, probes ...")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--n", type=int, default=1000, help="number of scenes (default 1000)")
    s.add_argument(
        "--split",
        default="train",
        choices=CLI_SPLITS,
        help="train/test (held-out pairs excluded), heldout (contains them), confounded (both halves)",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--image-size", type=int, default=64, help="image side in pixels (>= 32; 448 for tiling work)")
    s.add_argument("--max-objects", type=int, default=4)
    s.add_argument("--min-objects", type=int, default=1)
    s.add_argument("--max-overlap", type=float, default=0.1, help="max box overlap, fraction of the smaller box")
    s.add_argument("--background", default="plain", choices=("plain", "noise", "texture", "mixed"))
    s.add_argument("--shard-size", type=int, default=1000, help="samples per tar shard")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=data_main)


def data_main(args) -> int:
    from ..data.worlds.shapes.writer import write_shapes
    from ..registry import ConfigError

    if args.data_command != "shapes":
        raise ConfigError(f"unknown data command {args.data_command!r}; available: shapes")
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    try:
        info = write_shapes(
            args.out,
            args.n,
            args.split,
            args.seed,
            image_size=args.image_size,
            max_objects=args.max_objects,
            min_objects=args.min_objects,
            max_overlap=args.max_overlap,
            background=args.background,
            shard_size=args.shard_size,
            progress=not args.no_progress,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from err
    counts = {k: v["counts"] for k, v in info.items()} if "counts" not in info else info["counts"]
    print(f"wrote {args.out}: {json.dumps(counts)}")
    return 0
