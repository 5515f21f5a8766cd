"""Command-line entry points for evaluation, for the lead to wire into `modalign`:

    modalign eval CHECKPOINT --suite NAME[,NAME] --data NAME[:k=v,...] [--data ...] --out DIR [--param k=v ...]
                  [--corrupt NAME:SEVERITY]
    modalign compare RUN_A RUN_B ... [--json]

`add_eval_parser(subparsers)` / `eval_main(args)` and `add_compare_parser(subparsers)` / `compare_main(args)`.
One --data applies to every suite; otherwise give one --data per suite, in the same order.
"""

from __future__ import annotations

import argparse
import json

import yaml

from .. import strict_yaml
from ..config import Component, EvalConfig
from ..registry import ConfigError


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside brackets, so `objs=[a,b],n=3` stays two settings."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "[{(") - (ch in "]})")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    return parts


def parse_kv(items: list[str], what: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{what} setting {item!r} must look like key=value (e.g. n=200)")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = strict_yaml.load(v) if v != "" else ""
        except yaml.YAMLError as err:
            raise ConfigError(f"{what} setting {item!r}: the value is not valid YAML ({err})") from None
    return out


def parse_data(spec: str) -> Component:
    """`shapes:task=caption,n=200,split=test` -> Component(name="shapes", task="caption", n=200, split="test")."""
    name, _, rest = spec.partition(":")
    if not name:
        raise ConfigError(f"--data {spec!r}: start with a dataset name, e.g. shapes:task=caption,n=200")
    return Component(name=name, **parse_kv(_split_top(rest), "--data"))


def build_evals(suites: str, data: list[str], params: list[str], corrupt: str | None = None) -> list[EvalConfig]:
    names = [s for s in suites.split(",") if s]
    if not names:
        raise ConfigError("--suite needs at least one name, e.g. --suite retrieval,geometry")
    if len(data) not in (1, len(names)):
        raise ConfigError(f"give one --data for all suites or one per suite ({len(names)}), got {len(data)}")
    comps = [parse_data(d) for d in data] * (len(names) if len(data) == 1 else 1)
    extra = parse_kv(params, "--param")
    if corrupt:
        extra["corrupt"] = corrupt
    return [EvalConfig(suite=s, data=c, **extra) for s, c in zip(names, comps)]


def add_eval_parser(subparsers) -> argparse.ArgumentParser:
    from ..eval.suites import SUITES

    suites = ", ".join(sorted(SUITES))
    p = subparsers.add_parser(
        "eval",
        help="run evaluation suites on a saved model; writes results.json + report.html",
        description=f"Run evaluation suites on a saved model. Suites: {suites}. Datasets and every suite's "
        "parameters: `modalign list datasets`, `modalign list suites`.",
    )
    p.add_argument(
        "checkpoint",
        help="a modalign model directory (e.g. runs/x/final) or a Hugging Face LLaVA / Idefics2 / Idefics3 / BLIP-2 / "
        "CLIP / SigLIP checkpoint directory",
    )
    p.add_argument("--suite", required=True, help=f"comma-separated suite names, of: {suites}")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        help="NAME[:k=v,...], e.g. shapes:task=caption,n=200,split=test or a benchmark file reader such as "
        "vqav2:questions=Q.json,annotations=A.json,images=DIR (docs/EVAL.md); once, or once per suite",
    )
    p.add_argument("--param", action="append", default=[], help="suite parameter k=v applied to every suite")
    p.add_argument(
        "--corrupt",
        metavar="NAME:SEVERITY",
        help="corrupt every item's image first: gaussian_noise, blur, jpeg, brightness or occlusion at 1..5 (0 clean), "
        "e.g. gaussian_noise:3",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="allow a model built from your own Python classes to import them (only models you trust)",
    )
    p.set_defaults(func=eval_main)
    return p


def eval_main(args) -> int:
    import torch

    from ..data import DATASETS
    from ..eval.compare import compare_runs
    from ..eval.runner import check_evals, run_suites
    from ..models import load_model

    torch.set_num_threads(1)
    evals = build_evals(args.suite, args.data, args.param, args.corrupt)
    check_evals(evals, DATASETS, where="--suite/--data")  # bad suites, parameters or data paths before any weight
    model = load_model(args.checkpoint, trust_code=args.trust_code)
    run_suites(model, evals, args.out, DATASETS, progress=not args.quiet, meta={"checkpoint": str(args.checkpoint)})
    print(compare_runs([args.out]))
    print(f"report: {args.out}/report.html")
    return 0


def add_compare_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("compare", help="one table of metrics across several eval runs")
    p.add_argument("runs", nargs="+", help="run directories or results.json files")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(func=compare_main)
    return p


def compare_main(args) -> int:
    from ..eval.compare import compare_runs, compare_runs_dict

    print(json.dumps(compare_runs_dict(args.runs), indent=1) if args.json else compare_runs(args.runs))
    return 0
