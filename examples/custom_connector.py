"""Plug in a connector of your own (examples/my_parts/connectors.py), train it on the built-in shapes world, save,
and load it back.

    python examples/custom_connector.py --out runs/custom-connector [--lm smollm2-135m] [--steps 200]

The saved model records the connector by import path and config; loading it imports your class, which runs your
code, so `ma.load` asks for `trust_code=True`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so that `my_parts` imports from this folder

from my_parts.connectors import AttentionPool

import modalign as ma


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lm", default="smollm2-135m", help="an LM name (modalign list lms) or a local checkpoint dir")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--queries", type=int, default=8)
    p.add_argument("--out", default="runs/custom-connector")
    args = p.parse_args(argv)

    # your class by import path and its own settings; the tower's and the LM's widths come as in_dim / out_dim
    # (an AttentionPool(...) instance works too, if you size it yourself)
    connector = {
        "name": "module",
        "target": "my_parts.connectors:AttentionPool",
        "config": {"num_queries": args.queries},
    }
    model = ma.VisionLanguageModel(
        vision={"name": "efficientnet-lite0", "image_size": 64}, connector=connector, lm=args.lm
    )
    data = {"name": "shapes", "task": "caption", "n": 2000, "caption": "short"}
    ma.train(
        model,
        [
            ma.Stage(
                name="align",
                objective="caption",
                data=data,
                steps=args.steps,
                batch_size=16,
                lr=2e-3,
                train=["connector"],
            )
        ],
        args.out,
    )

    again = ma.load(f"{args.out}/final", trust_code=True)
    assert isinstance(again.connector, AttentionPool) and again.prompts.tokens_per_image == args.queries
    result = ma.evaluate(
        again, "caption", {"name": "shapes", "task": "caption", "split": "heldout", "n": 40}, max_new_tokens=24
    )
    print({k: round(v, 4) for k, v in result["metrics"].items()})
    return result


if __name__ == "__main__":
    main()
