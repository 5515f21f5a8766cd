"""The knowledge-transfer table from finished runs: accuracy per question kind of each run's `vqa` results on the
fashion-mnist knowledge questions (likelihood and generation), plus the text-only bounds written by text_only.py.

  python research/knowledge-transfer/table.py runs/kt-smollm2 runs/kt-smollm2-lora runs/kt-tiny runs/kt-qwen \
      --text runs/kt-text-smollm2.json runs/kt-text-qwen.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KINDS = ["feet", "winter", "carry", "upper-body"]


def row(name: str, metrics: dict) -> str:
    cells = [metrics.get(f"acc_{k}", metrics.get(k)) for k in KINDS] + [metrics.get("accuracy")]
    return f"| {name} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="*")
    ap.add_argument("--text", nargs="*", default=[])
    args = ap.parse_args()
    print("| model | " + " | ".join(KINDS) + " | all |")
    print("|---" * (len(KINDS) + 2) + "|")
    for run in args.runs:
        suites = json.loads((Path(run) / "eval" / "results.json").read_text())["suites"]
        for r in suites.values():
            if r["suite"] != "vqa":
                continue
            mode = r["settings"].get("mode", "generate")
            print(row(f"{Path(run).name} ({mode})", r["metrics"]))
    for path in args.text:
        r = json.loads(Path(path).read_text())
        print(row(f"{r['lm']} text only, true class name ({','.join(r['choices'])})", r))


if __name__ == "__main__":
    main()
