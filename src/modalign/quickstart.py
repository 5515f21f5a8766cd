"""The main job (`make demo` -> `modalign quickstart`): train and evaluate the built-in recipes end to end.

Parts, in order: `lit` (LiT on real Fashion-MNIST with pretrained frozen towers), `siglip` (a from-scratch SigLIP dual
encoder on the shapes world: held-out compositions, attribute-swap probes), `llava` (LLaVA on the shapes world: a
frozen ImageNet tower, an mlp connector and SmolLM2-135M-Instruct with LoRA; VQA, POPE and captions on held-out
compositions). Each part is a recipe in recipes/ run by the one trainer and the evaluation runner; this module only
schedules them over two processes and writes one summary: `OUT/metrics.json`, `OUT/report.html` (headline numbers,
loss curves, a gallery of the VLM's answers, links to every part's full report).
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path

from .config import load_recipe

PARTS = {
    "lit": "lit-fashion-mnist.yaml",
    "siglip": "siglip-shapes.yaml",
    "llava": "llava-shapes.yaml",
}

# The numbers each part is judged by (suite key, metric); the full tables are in each part's report.
HEADLINES = {
    "lit": [
        ("zeroshot", "top1"),
        ("zeroshot", "mean_per_class_recall"),
        ("linear_probe", "test_acc"),
        ("geometry", "gap_norm"),
    ],
    # the first retrieval / compositional entries of siglip-shapes are on the held-out compositions
    "siglip": [
        ("retrieval", "t2i_R@1"),
        ("retrieval", "i2t_R@1"),
        ("compositional", "acc_replace-att"),
        ("compositional", "acc_swap-att"),
        ("compositional", "acc_swap-obj"),
        ("geometry", "gap_norm"),
    ],
    # all on the held-out compositions; POPE with its three samplers of absent objects
    "llava": [
        ("vqa", "accuracy"),
        ("pope", "random_f1"),
        ("pope", "random_yes_ratio"),
        ("pope", "popular_f1"),
        ("pope", "adversarial_f1"),
        ("caption", "CIDEr-D"),
    ],
}


def recipes_dir() -> Path:
    """The built-in recipes (package data), or $MODALIGN_RECIPES to try edited copies."""
    env = os.environ.get("MODALIGN_RECIPES")
    if env:
        return Path(env)
    from .recipes import path

    return path(PARTS["lit"]).parent


def _vision_name(recipe_file: str) -> str:
    import yaml

    return yaml.safe_load((recipes_dir() / recipe_file).read_text())["model"]["vision"]["name"]


def _fast_overrides(recipe_path: Path) -> list[str]:
    """A smoke run: a few steps per stage and small eval sets. Its numbers mean nothing."""
    import yaml

    raw = yaml.safe_load(recipe_path.read_text())
    sets = [f"stages.{i}.steps=8" for i in range(len(raw["stages"]))]
    for i, ev in enumerate(raw.get("eval", [])):
        sets.append(f"eval.{i}.limit=40")
        if "train_data" in ev:
            sets.append(f"eval.{i}.train_data.n=200")
    return sets


def _part_recipe(part: str, fast: bool, overrides: list[str]):
    path = recipes_dir() / PARTS[part]
    sets = (_fast_overrides(path) if fast else []) + overrides
    return load_recipe(path, sets), sets


def run_part(
    part: str,
    out: Path,
    fast: bool,
    overrides: list[str],
    progress: bool = True,
    run_eval: bool = True,
    on_step=None,
) -> dict:
    """Train one part (and evaluate it, unless `run_eval` is False: `eval_part` does that, possibly split)."""
    from .api import run_recipe

    recipe, sets = _part_recipe(part, fast, overrides)
    start = time.time()
    # resume: a second `make demo` into the same folder continues (or reuses) the first one's runs
    result = run_recipe(recipe, out / part, resume=True, progress=progress, run_eval=run_eval, on_step=on_step)
    total = time.time() - start
    train_s = result["train"].get("seconds", total)
    return {
        "recipe": PARTS[part],
        "overrides": sets,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(total - train_s, 1),
        "suites": result["eval"]["suites"] if result["eval"] else {},
    }


def eval_part(
    part: str, out: Path, fast: bool, overrides: list[str], shard: int, shards: int, threads: int | None = None
) -> dict:
    """Run every `shards`-th of a trained part's eval suites (starting at `shard`) into OUT/part/eval/shard-k/;
    returns {result key: result} with the keys one unsplit run would give and sample paths relative to OUT/part/eval."""
    from .data import DATASETS
    from .eval.runner import result_key, run_suites
    from .models import load_model
    from .trainer.eval_cache import prepare_for_eval

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    recipe, _ = _part_recipe(part, fast, overrides)
    keys: list[str] = []
    for ev in recipe.eval:
        keys.append(result_key(ev, set(keys)))
    mine = list(range(shard, len(recipe.eval), shards))
    if not mine:
        return {}
    model = prepare_for_eval(load_model(out / part / "final"), recipe, out / part)
    sub = f"shard-{shard}"
    res = run_suites(model, [recipe.eval[i] for i in mine], out / part / "eval" / sub, DATASETS, False, report=False)
    got = list(res["suites"].values())
    for r in got:
        for sample in r.get("samples", []):
            if sample.get("image"):
                sample["image"] = f"{sub}/{sample['image']}"
    return {keys[i]: r for i, r in zip(mine, got)}


def merge_eval(part: str, out: Path, shard_results: list[dict], fast: bool, overrides: list[str]) -> dict:
    """The shards' results in the recipe's order as one results.json and report.html in OUT/part/eval/."""
    from .eval.report import write_report
    from .eval.runner import result_key

    recipe, _ = _part_recipe(part, fast, overrides)
    merged: dict = {}
    for shard in shard_results:
        merged.update(shard)
    order: list[str] = []
    for ev in recipe.eval:
        order.append(result_key(ev, set(order)))
    results = {
        "meta": {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "shards": len(shard_results)},
        "suites": {k: merged[k] for k in order if k in merged},
    }
    eval_dir = out / part / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "results.json").write_text(json.dumps(results, indent=1, default=float))
    write_report(results, eval_dir)
    return results["suites"]


def _headline_rows(part: str, res: dict) -> list[tuple[str, str, float]]:
    rows = []
    for key, metric in HEADLINES.get(part, []):
        value = res["suites"].get(key, {}).get("metrics", {}).get(metric)
        if value is not None:
            rows.append((key, metric, value))
    return rows


def _loss_plot(out: Path, parts: list[str]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(parts), figsize=(4.2 * len(parts), 3.2), squeeze=False)
    drawn = False
    for ax, part in zip(axes[0], parts):
        log = out / part / "log.jsonl"
        if not log.exists():
            continue
        by_stage: dict[str, list[tuple[int, float]]] = {}
        for line in log.read_text().splitlines():
            rec = json.loads(line)
            if "loss" in rec and "event" not in rec:
                by_stage.setdefault(rec.get("stage", "?"), []).append((rec["global_step"], rec["loss"]))
        for stage, pts in by_stage.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=stage)
            drawn = True
        ax.set_title(part)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    name = "loss_curves.png"
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name if drawn else None


def _answer_gallery(part: str, res: dict, per_suite: int = 6) -> list[str]:
    """A few of each generative suite's samples (image, prompt, answer, truth), marked right or wrong."""
    rows = []
    for key, r in res.get("suites", {}).items():
        for s in r.get("samples", [])[:per_suite]:
            if "answer" not in s:
                continue
            img = f"<img src='{part}/eval/{html.escape(s['image'])}' width=64>" if s.get("image") else ""
            mark = {True: " style='color:#070'", False: " style='color:#b00'"}.get(s.get("correct"), "")
            rows.append(
                f"<tr><td>{html.escape(key)}</td><td>{img}</td><td>{html.escape(str(s.get('prompt', '')))}</td>"
                f"<td{mark}>{html.escape(str(s['answer']))}</td><td>{html.escape(str(s.get('truth', '')))}</td></tr>"
            )
    if not rows:
        return []
    head = "<tr><th>suite</th><th>image</th><th>prompt</th><th>answer</th><th>truth</th></tr>"
    return [f"<h3>{part}: answers</h3><table>{head}{''.join(rows)}</table>"]


def write_summary(out: Path, summary: dict) -> Path:
    (out / "metrics.json").write_text(json.dumps(summary, indent=2, default=float))
    parts = list(summary["parts"])
    loss_png = _loss_plot(out, parts)
    body = [
        "<!doctype html><html><head><meta charset='utf-8'><title>modalign quickstart</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 10px;"
        "border-bottom:1px solid #ddd;text-align:left}img{max-width:100%}</style></head><body>",
        "<h1>modalign quickstart</h1>",
        f"<p>Total time {summary['seconds']:.0f} s. Every number below was measured by modalign's evaluation "
        "code on held-out data; each part's full report has all metrics, figures and settings.</p>",
        "<table><tr><th>part</th><th>suite</th><th>metric</th><th>value</th></tr>",
    ]
    for part, res in summary["parts"].items():
        for key, metric, value in _headline_rows(part, res):
            body.append(
                f"<tr><td>{part}</td><td>{html.escape(key)}</td><td>{html.escape(metric)}</td><td>{value:.4f}</td></tr>"
            )
    body.append("</table>")
    if loss_png:
        body.append(f"<h2>Training loss</h2><img src='{loss_png}'>")
    for part, res in summary["parts"].items():
        body.append(
            f"<h2>{part}</h2><p>recipe {html.escape(res['recipe'])}; train {res['train_seconds']} s, "
            f"eval {res['eval_seconds']} s. <a href='{part}/eval/report.html'>full report</a></p>"
        )
        for png in sorted((out / part / "eval").glob("*.png"))[:6]:
            body.append(f"<img src='{part}/eval/{png.name}' style='max-width:32%'>")
        body += _answer_gallery(part, res)
    body.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(body))
    return path


def _llava_overrides(out: Path, parts: list[str]) -> list[str]:
    if "siglip" in parts and _vision_name(PARTS["llava"]) == "modalign":
        # A LLaVA recipe that builds on a modalign tower gets the one the SigLIP part just trained.
        return [f"model.vision.path={(out / 'siglip' / 'final').resolve()}"]
    return []


FREE_CORE = ".quickstart-core-free"  # written by the worker that has finished its parts


def _grow_threads_when_free(out: Path, threads: int):
    """An on_step callback: once the other worker has finished (its flag file exists), this process takes its
    core too, so that the long part does not run on one thread beside an idle core."""
    grown = []

    def on_step(stage, step, global_step, logged):
        if not grown and (out / FREE_CORE).exists():
            import torch

            torch.set_num_threads(threads)
            grown.append(global_step)
            print(f"== quickstart: a core is free; training on {threads} threads from step {global_step}", flush=True)

    return on_step


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _print_headlines(part: str, res: dict) -> None:
    for key, metric, value in _headline_rows(part, res):
        print(f"   {part:7s} {key:14s} {metric:28s} {value:.4f}", flush=True)


def _run_group(
    out: Path,
    fast: bool,
    group: list[str],
    parts: list[str],
    threads: int | None,
    progress: bool,
    deferred_eval: tuple[str, ...] = (),
    grow_to: int | None = None,
) -> dict:
    """Run some parts in order in this process (a worker of the parallel quickstart, or the only one); the parts in
    `deferred_eval` are only trained (their suites run afterwards, split over the workers). With `grow_to`, a worker
    whose group ends writes OUT/.quickstart-core-free, and one training a deferred part moves to `grow_to` threads
    when it sees that file."""
    _set_threads(threads)
    results = {}
    for part in group:
        print(f"== quickstart: {part} ({PARTS[part]}) started", flush=True)
        overrides = _llava_overrides(out, parts) if part == "llava" else []
        grow = _grow_threads_when_free(out, grow_to) if grow_to and part in deferred_eval else None
        results[part] = run_part(
            part, out, fast, overrides, progress=progress, run_eval=part not in deferred_eval, on_step=grow
        )
        if part in deferred_eval:
            print(f"== quickstart: {part} trained in {results[part]['train_seconds']:.0f} s", flush=True)
        _print_headlines(part, results[part])
    if grow_to and not any(p in deferred_eval for p in group):
        (out / FREE_CORE).touch()
    return results


def run_quickstart(out: str | Path, fast: bool = False, parts: list[str] | None = None, workers: int = 2) -> dict:
    """Run the parts; with workers=2 they run in two processes side by side, one thread each (these models use one
    core far better than two): LLaVA's training in one, LiT then SigLIP in the other — once those are done, LLaVA's
    training takes both cores — and LLaVA's evaluation suites then split over both. With workers=1 everything runs
    in order in this process."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = parts or list(PARTS)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown quickstart part(s) {unknown}; choose from {list(PARTS)}")
    if _llava_overrides(out, parts):  # the LLaVA part needs the SigLIP part's tower: same process, in order
        split = ([p for p in parts if p == "lit"], [p for p in parts if p != "lit"])
    else:  # balance the wall time: LLaVA is the longest part
        split = ([p for p in parts if p != "llava"], [p for p in parts if p == "llava"])
    groups = [g for g in split if g]
    start = time.time()
    summary = {"parts": {}, "fast": fast, "workers": workers}
    if workers > 1 and len(groups) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        deferred = ("llava",) if "llava" in parts else ()
        (out / FREE_CORE).unlink(missing_ok=True)  # a flag left by an earlier run must not free a core now
        print(
            f"== quickstart: {' | '.join(' -> '.join(g) for g in groups)} in {len(groups)} processes"
            + (", then llava's evaluation split over both" if deferred else "")
            + " (progress bars off; each part prints when it ends)",
            flush=True,
        )
        with ProcessPoolExecutor(len(groups), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_run_group, out, fast, g, parts, 1, False, deferred, workers) for g in groups]
            for future in futures:
                summary["parts"].update(future.result())
            for part in deferred:
                t0 = time.time()
                overrides = _llava_overrides(out, parts)
                shards = [
                    pool.submit(eval_part, part, out, fast, overrides, k, len(groups), 1) for k in range(len(groups))
                ]
                res = summary["parts"][part]
                res["suites"] = merge_eval(part, out, [f.result() for f in shards], fast, overrides)
                res["eval_seconds"] = round(time.time() - t0, 1)
                print(f"== quickstart: {part} evaluated in {res['eval_seconds']:.0f} s", flush=True)
                _print_headlines(part, res)
        summary["parts"] = {p: summary["parts"][p] for p in parts}
    else:
        for group in groups:
            summary["parts"].update(_run_group(out, fast, group, parts, None, True))
            summary["seconds"] = time.time() - start
            write_summary(out, summary)  # after every group, so an interrupted demo still leaves its numbers
    summary["seconds"] = time.time() - start
    report = write_summary(out, summary)
    print(f"quickstart done in {summary['seconds']:.0f} s: {report}")
    return summary
