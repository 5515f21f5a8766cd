"""Every route on the same questions: tool routes (converter, agent; zero-shot and LoRA-taught SmolLM2), the
connector route (LLaVA MLP) and the perceiver route (Q-Former), on Fashion-MNIST knowledge questions, the shapes
world's held-out VQA and the real-photo questions; optionally under corruptions. One JSON line per (route, set,
corruption) into --out, measured by modalign's own vqa suite, with wall and CPU seconds and the machine's load.

  PYTHONPATH=src python research/tool-routes/compare.py --routes all --sets all --out runs/tool-routes/clean.jsonl
  PYTHONPATH=src python research/tool-routes/compare.py --routes converter,agent,llava,qformer --sets fashion \
      --n 20 --corrupt all --out runs/tool-routes/robust.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

import modalign as ma
from modalign.data.fashion_mnist import CLASSNAMES, TEMPLATES
from modalign.eval.corruptions import CORRUPTIONS, SEVERITIES

RUNS = Path(os.environ.get("TOOL_ROUTES_RUNS", "runs"))
SETS = {
    "fashion": lambda n: ma.dataset("fashion-mnist-qa", task="vqa", split="test", n=n, seed=1),
    "shapes": lambda n: ma.dataset("shapes", task="vqa", split="heldout", n=max(1, n // 5)),
    "photos": lambda n: ma.dataset("photo-qa"),
}
# which trained connector model answers each set (photos: the one whose tower reads ImageNet features at 128 px)
WORLD = {"fashion": "fashion", "shapes": "shapes", "photos": "fashion"}
ROUTES = ["converter-zs", "agent-zs", "converter", "agent", "converter-labels", "llava", "qformer"]
_cache: dict = {}


def trained_parameters(run: Path, lora_only: bool = False) -> int:
    """Parameters a run trained, from its saved model.safetensors (frozen parts are stored by reference): all its
    tensors but BLIP-2's stage-1 heads (`qformer_stage1.`, which an instruct stage never uses), or with `lora_only`
    the LoRA adapters alone (a stage that trains only lm.lora still stores its untouched connector)."""
    from safetensors import safe_open

    with safe_open(str(run / "final" / "model.safetensors"), "pt") as f:
        keys = [k for k in f.keys() if not k.startswith("qformer_stage1.")]  # noqa: SIM118 (not a dict)
        if lora_only:
            keys = [k for k in keys if "lora_" in k]
        return sum(math.prod(f.get_slice(k).get_shape()) for k in keys)


def tools(kind: str):
    from modalign.tools import build_tool
    from modalign.tools.label_tagger import LabelTagger

    if kind not in _cache:
        if kind == "labels":
            lit = ma.load(RUNS / "lit-fashion-mnist" / "final")
            _cache[kind] = [LabelTagger(lit, CLASSNAMES, TEMPLATES)]
        else:
            _cache[kind] = [build_tool("ocr"), build_tool("tagger")]
    return _cache[kind]


def chat(lm: str):
    from modalign.tools.chat_lm import ChatLM

    key = f"lm:{lm}"
    if key not in _cache:
        _cache[key] = ChatLM.from_spec(lm)
    return _cache[key]


def build(route: str, set_name: str):
    """(model, trained parameters, what it is) for one route on one question set."""
    from modalign.tools import build_route

    taught = str(RUNS / "tool-use-smollm2" / "final")
    if route in ("converter-zs", "agent-zs"):
        return build_route(route[:-3], tools("generic"), chat("smollm2-135m")), 0, "SmolLM2 zero-shot, ocr + tagger"
    if route in ("converter", "agent"):
        lora = trained_parameters(RUNS / "tool-use-smollm2", lora_only=True)
        return build_route(route, tools("generic"), chat(taught)), lora, "SmolLM2 + tool-use LoRA, ocr + tagger"
    if route == "converter-labels":
        heads = trained_parameters(RUNS / "lit-fashion-mnist") + trained_parameters(RUNS / "tool-use-smollm2", True)
        return build_route("converter", tools("labels"), chat(taught)), heads, "tool-use LoRA, LiT labels tool"
    run = RUNS / f"{'llava' if route == 'llava' else 'blip2'}-smollm2-{WORLD[set_name]}"
    key = f"vlm:{run}"
    if key not in _cache:
        _cache[key] = ma.load(run / "final")
    return _cache[key], trained_parameters(run), f"{run.name} (connector + LoRA)"


def call_stats(answers) -> dict:
    """How a tool route used its tools: calls per question, the share that ran, the tools called."""
    if answers is None:
        return {}
    calls = [c for a in answers for c in a.calls]
    tools = sorted({c.tool for c in calls})
    ok = sum(c.ok for c in calls)
    return {
        "calls_per_q": round(len(calls) / max(1, len(answers)), 2),
        "calls_ok": ok,
        "calls": len(calls),
        "tools_called": tools,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--routes", default="all")
    ap.add_argument("--sets", default="all")
    ap.add_argument("--n", type=int, default=40, help="Fashion-MNIST questions (shapes: n/5 scenes, ~n questions)")
    ap.add_argument("--corrupt", default="none", help="none, all, or NAME[,NAME] (each at severities 1..5)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    routes = ROUTES if args.routes == "all" else args.routes.split(",")
    sets = list(SETS) if args.sets == "all" else args.sets.split(",")
    conditions = [None]
    if args.corrupt != "none":
        names = list(CORRUPTIONS) if args.corrupt == "all" else args.corrupt.split(",")
        conditions = [f"{c}:{s}" for c in names for s in SEVERITIES]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():  # a rerun skips what is already measured
        done = {(r["route"], r["set"], r["corrupt"]) for r in map(json.loads, out.read_text().splitlines())}
    for set_name in sets:
        data = SETS[set_name](args.n)
        for route in routes:
            if route == "converter-labels" and set_name != "fashion":
                continue
            model, n_params, what = build(route, set_name)
            for cond in conditions:
                if (route, set_name, cond) in done:
                    continue
                params = {"corrupt": cond} if cond else {}
                if hasattr(model, "record"):
                    model.record = []
                load0, wall0, cpu0 = os.getloadavg()[0], time.perf_counter(), time.process_time()
                res = ma.evaluate(model, "vqa", data, progress=False, batch_size=8, **params)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                n = res["settings"]["dataset_size"]
                row = {
                    "route": route,
                    "set": set_name,
                    "corrupt": cond,
                    "what": what,
                    "n": n,
                    "accuracy": round(res["metrics"]["accuracy"], 4),
                    "per_qtype": {k: round(v, 3) for k, v in res["metrics"].items() if k.startswith("acc_")},
                    "s_per_q": round(wall / n, 3),
                    "cpu_s_per_q": round(cpu / n, 3),
                    "load": round(load0, 2),
                    "trained_params": n_params,
                    **call_stats(getattr(model, "record", None)),
                    "samples": [{k: s[k] for k in ("prompt", "answer", "truth")} for s in res["samples"][:8]],
                }
                with open(out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(
                    f"{set_name:8s} {route:17s} {cond or 'clean':18s} acc {row['accuracy']:.3f}  "
                    f"{row['s_per_q']:.2f} s/q ({row['cpu_s_per_q']:.2f} cpu)  load {load0:.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
