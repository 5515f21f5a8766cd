"""The connector design-space study: every connector trained with the same data, stages and steps, then evaluated on
the shapes world's held-out compositions with the project's own suites.

Each connector replaces `model.connector` of a base recipe (default recipes/llava-shapes-long.yaml, whose tower the
connector settings below are sized for); everything else (tower, LM, data, stages, seeds) is identical, so the table
compares connectors only. One process runs its connectors one after another; two processes given disjoint
`--connectors` and the same `--out` (one per core) fill one table. Per connector it records VQA accuracy and POPE F1
(random sampler) on split `heldout`, the visual tokens the LM sees, trainable / total parameters per stage, and
training time (wall clock and this process's CPU time), then prints and writes a markdown table and a JSON file.

    OMP_NUM_THREADS=1 python scripts/connector_study.py --out runs/connector-study
    OMP_NUM_THREADS=1 python scripts/connector_study.py --connectors mlp,qformer --set stages.1.steps=100
    # this machine, 2 cores: --connectors pixel-shuffle,qformer,linear and xattn,perceiver,mlp in two processes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

# Every connector at the base recipe's sizes (tower: EfficientNet-Lite0 block 7 at 128 px = an 8x8 grid, 64 tokens
# of width 80; LM width 128). CNN cells carry no position of their own, so each connector learns one per cell
# (`positions: true`; the perceiver's own max_positions). Compressing connectors keep a comparable budget of 16 tokens.
CONNECTORS = {
    "linear": "{name: linear, positions: true}",
    "mlp": "{name: mlp, positions: true}",
    "pixel-shuffle": "{name: pixel-shuffle, scale: 2, positions: true}",
    "qformer": "{name: qformer, num_queries: 16, hidden_dim: 128, num_layers: 2, heads: 4, positions: true}",
    "perceiver": "{name: perceiver, num_latents: 16, depth: 2, heads: 4, head_dim: 32, ff_mult: 2, max_positions: 64}",
    "xattn": "{name: xattn, every: 1, heads: 4, head_dim: 32, positions: true}",
}
STUDY_SUITES = ("vqa", "pope")  # the study's two headline numbers; the recipes themselves also run caption/chair


def count_params(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def visual_tokens(model) -> tuple[int, int]:
    """(tokens the LM's sequence holds per image, tokens the image contributes as keys/values)."""
    n = model.num_vision_tokens
    if model.fusion == "xattn":
        return 0, model.connector.num_media_tokens(n)
    m = model.connector.num_tokens(n)
    return m, m


def run_one(name: str, spec: str, base: Path, out: Path, overrides: list[str]) -> dict:
    from modalign.config import load_recipe
    from modalign.data import DATASETS
    from modalign.eval.runner import run_suites
    from modalign.models import load_model
    from modalign.train import run_recipe

    recipe = load_recipe(base, [f"model.connector={spec}", *overrides])
    run_dir = out / name
    wall, cpu = time.perf_counter(), time.process_time()
    summary = run_recipe(recipe, run_dir, progress=False)
    train_wall, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
    model = load_model(run_dir / "final")
    evals = [e for e in recipe.eval if e.suite in STUDY_SUITES]
    wall, cpu = time.perf_counter(), time.process_time()
    results = run_suites(model, evals, run_dir / "eval", DATASETS, progress=False, report=False)["suites"]
    eval_wall, eval_cpu = time.perf_counter() - wall, time.process_time() - cpu
    in_seq, media = visual_tokens(model)
    row = {
        "connector": name, "spec": spec,
        "vqa_accuracy": results["vqa"]["metrics"]["accuracy"] if "vqa" in results else None,
        "vqa_per_type": {k[4:]: v for k, v in results.get("vqa", {}).get("metrics", {}).items()
                         if k.startswith("acc_")},
        "pope_f1_random": results["pope"]["metrics"].get("random_f1") if "pope" in results else None,
        "pope_yes_ratio_random": results["pope"]["metrics"].get("random_yes_ratio") if "pope" in results else None,
        "visual_tokens_in_sequence": in_seq, "visual_tokens_attended": media,
        "connector_params": sum(p.numel() for p in model.connector.parameters()),
        "trainable_per_stage": {s["name"]: s["trainable"] for s in summary["stages"]},
        "total_params": count_params(model),
        "final_loss_per_stage": {s["name"]: s["loss"] for s in summary["stages"]},
        "train_wall_s": round(train_wall, 1), "train_cpu_s": round(train_cpu, 1),
        "eval_wall_s": round(eval_wall, 1), "eval_cpu_s": round(eval_cpu, 1),
    }
    (run_dir / "study_row.json").write_text(json.dumps(row, indent=1))
    return row


def _fmt(v, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.3f}"


def markdown_table(rows: list[dict]) -> str:
    stages = list(rows[0]["trainable_per_stage"]) if rows else []
    head = ["connector", "VQA acc (heldout)", "POPE F1 (random)", "yes-ratio", "visual tokens in LM seq / attended",
            "connector params", *[f"trainable ({s})" for s in stages], "total params", "train CPU s", "train wall s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['connector']}`", _fmt(r["vqa_accuracy"], True), _fmt(r["pope_f1_random"]),
                 _fmt(r["pope_yes_ratio_random"]), f"{r['visual_tokens_in_sequence']} / {r['visual_tokens_attended']}",
                 f"{r['connector_params'] / 1e6:.2f}M",
                 *[f"{r['trainable_per_stage'][s] / 1e6:.2f}M" for s in stages],
                 f"{r['total_params'] / 1e6:.2f}M", f"{r['train_cpu_s']:.0f}", f"{r['train_wall_s']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="recipes/llava-shapes-long.yaml", help="base recipe whose connector is swapped")
    p.add_argument("--connectors", default=",".join(CONNECTORS), help=f"comma-separated subset of {list(CONNECTORS)}")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override applied to every run, e.g. --set stages.1.steps=100 (repeatable)")
    p.add_argument("--out", default="runs/connector-study")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    names = [c.strip() for c in args.connectors.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONNECTORS]
    if unknown:
        p.error(f"unknown connector(s) {unknown}; choose from {list(CONNECTORS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "OMP_NUM_THREADS=1 python scripts/connector_study.py " + " ".join(argv or sys.argv[1:])
    rows = []
    for name in names:
        print(f"== {name}: {CONNECTORS[name]}", flush=True)
        rows.append(run_one(name, CONNECTORS[name], Path(args.recipe), out, args.set))
        r = rows[-1]
        print(f"   vqa {_fmt(r['vqa_accuracy'], True)}  pope-f1 {_fmt(r['pope_f1_random'])}  "
              f"train {r['train_cpu_s']:.0f} CPU s / {r['train_wall_s']:.0f} s", flush=True)
        # Rewritten after every run from every finished row in --out, so an interrupted study keeps its rows and two
        # processes given disjoint --connectors (one per core) fill one table.
        write_tables(out, cmd)
    print(markdown_table(rows))
    return 0


def collect_rows(out: Path) -> list[dict]:
    """Every finished connector row under `out`, in the order of CONNECTORS."""
    rows = [json.loads(f.read_text()) for f in out.glob("*/study_row.json")]
    order = {name: k for k, name in enumerate(CONNECTORS)}
    return sorted(rows, key=lambda r: order.get(r["connector"], len(order)))


def write_tables(out: Path, cmd: str) -> None:
    rows = collect_rows(out)
    (out / "connector_study.md").write_text(f"Last command: `{cmd}`\n\n{markdown_table(rows)}\n")
    (out / "connector_study.json").write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
