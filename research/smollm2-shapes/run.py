"""Run one configuration of the smollm2-shapes study: a recipe (default base.yaml) with --set overrides, optionally
only some of its stages, through modalign's own trainer and eval suites; prints wall and CPU time.

  OMP_NUM_THREADS=1 python research/smollm2-shapes/run.py --out runs/s1 --stages align --set stages.0.steps=120
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import torch
import yaml

import modalign as ma
from modalign.config import apply_overrides, validate_recipe

HERE = Path(__file__).parent


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default=str(HERE / "base.yaml"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--stages", default=None, help="comma-separated stage names to keep (default: all)")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    raw = yaml.safe_load(Path(args.recipe).read_text())
    raw = apply_overrides(raw, args.set)
    if args.stages:
        keep = args.stages.split(",")
        raw["stages"] = [s for s in raw["stages"] if s["name"] in keep]
    recipe = validate_recipe(raw, args.recipe)
    t0, c0 = time.time(), cpu_seconds()
    with open("/proc/loadavg") as fh:
        load0 = fh.read().split()[0]
    res = ma.run_recipe(recipe, args.out, progress=False)
    wall, cpu = time.time() - t0, cpu_seconds() - c0
    with open("/proc/loadavg") as fh:
        load1 = fh.read().split()[0]
    train_s = res["train"].get("seconds")
    lines = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "train_wall_s": train_s, "load": [load0, load1]}
    for key, r in (res["eval"] or {}).get("suites", {}).items():
        lines[key] = {k: round(v, 3) for k, v in r["metrics"].items() if isinstance(v, float)}
    print(json.dumps(lines, indent=1))
    Path(args.out, "study.json").write_text(json.dumps({"sets": args.set, "stages": args.stages, **lines}, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
