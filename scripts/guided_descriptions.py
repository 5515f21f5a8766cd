"""Describe with no colour-shape pair written more often than allowed: once, or as often as the tokens show it.

Decodes a held-out sample of the shapes world greedily, plainly and with the guide of modalign.eval.pair_guide (the
`chair` eval suite's `guide:`): where a sentence's subject is about to get its shape, every shape whose pair with
the subject's colour the description has written as often as its budget allows is forbidden. `--budget one`
(default) writes no pair twice and needs no region words; `--budget tokens` reads budgets off the visual tokens of a
describer trained with region words. `--steer shapes|all|strict|complete` prefers the tokens' pairs not yet
written (strict: only those colours may follow a subject's size word; complete: and no end while a pair on two cells
or more is unwritten); `--repair tokens` lets the tokens pick the shape where the LM's own is forbidden.
pair_guide's docstring says each exactly.

It prints CHAIR and phrase coverage (the project's metrics) for the plain greedy and the guided descriptions, and
with `--budget tokens` how far the budgets are from the scenes' pairs.

    OMP_NUM_THREADS=1 python scripts/guided_descriptions.py runs/llava-shapes-describe/final --scenes 500

scripts/rerank_descriptions.py --guided reranks candidates decoded with this guide (budget one).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caption_errors import PROMPT  # noqa: E402  (sibling scripts, not a package)
from rerank_descriptions import misses, print_report  # noqa: E402

from modalign.eval.pair_guide import BUDGETS, REPAIRS, STEERS, check_guide, guide_for  # noqa: E402


def guide(model, world, budget: str = "one", steer: str = "none", repair: str = "lm", batch_size: int = 16,
          max_new_tokens: int = 128, progress: bool = True, budgets_out: list | None = None
          ) -> tuple[list[str], list[str], int]:
    """(plain greedy descriptions, guided ones, how many greedy picks the guide overruled), one per item of a
    `task="chair"` world."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    if repair not in REPAIRS:
        raise ValueError(f"repair must be one of {REPAIRS}, got {repair!r}")
    plain, guided, overruled = [], [], 0
    with torch.no_grad():
        for lo in tqdm(range(0, len(world), batch_size), desc="guide", disable=not progress):
            rows = [world[i] for i in range(lo, min(lo + batch_size, len(world)))]
            images, prompts = [r["image"] for r in rows], [PROMPT] * len(rows)
            processor = guide_for(model, images, budget, steer, repair)
            if budgets_out is not None:
                budgets_out += processor.budgets
            plain += model.generate(images, prompts, max_new_tokens=max_new_tokens)
            guided += model.generate(images, prompts, max_new_tokens=max_new_tokens, logits_processor=processor)
            overruled += processor.bans
    return plain, guided, overruled


def budget_errors(budgets: list[Counter], scenes: list[dict]) -> tuple[int, int]:
    """(pairs the budgets hold that their scene does not, scene pairs the budgets miss), summed over scenes."""
    extra = missing = 0
    for b, scene in zip(budgets, scenes):
        truth = {(o["color"], o["shape"]) for o in scene["objects"]}
        held = {p for p, k in b.items() if k > 0}
        extra, missing = extra + len(held - truth), missing + len(truth - held)
    return extra, missing


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="the world's seed (which scenes), as in --data seed=S")
    ap.add_argument("--budget", choices=BUDGETS, default="one")
    ap.add_argument("--steer", choices=STEERS, default="none", help="prefer the tokens' pairs still unwritten")
    ap.add_argument("--repair", choices=REPAIRS, default="lm",
                    help="who picks the shape when the LM's own is forbidden: the LM's next best, or the tokens")
    ap.add_argument("--show", type=int, default=0, help="print this many guided descriptions that miss a phrase")
    args = ap.parse_args(argv)
    if args.scenes < 1:
        ap.error(f"--scenes must be >= 1, got {args.scenes}")
    from modalign.data.shapes import ShapesWorld
    from modalign.models import load_model

    torch.set_num_threads(1)
    model = load_model(args.checkpoint).eval()
    try:
        check_guide(model, args.budget, args.steer, args.repair)
    except ValueError as err:
        ap.error(f"{args.checkpoint}: {err}")
    world = ShapesWorld(task="chair", split=args.split, n=args.scenes, seed=args.seed)
    budgets = []
    plain, guided, overruled = guide(model, world, args.budget, args.steer, args.repair, budgets_out=budgets)
    print(f"{args.scenes} scenes, budget {args.budget}, steer {args.steer}, repair {args.repair}")
    phrases = print_report(world, {"greedy": plain, "guided": guided})
    changed = sum(a != b for a, b in zip(plain, guided))
    print(f"the guide overruled {overruled} greedy picks and changed {changed} descriptions")
    if args.budget == "tokens":
        extra, missing = budget_errors(budgets, [world.scene(i) for i in range(len(world))])
        print(f"the tokens' budgets hold {extra} pairs their scenes do not and miss {missing} of the scenes' pairs")
    for i in misses(phrases, guided)[:args.show]:
        print(f"\nscene {i}: {', '.join(phrases[i])}\n  guided: {guided[i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
