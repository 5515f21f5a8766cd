"""An HTML report for people: metric tables, figures (PNG beside the HTML), and a gallery of model answers.

`write_report(results, out_dir)` takes the dict `eval.runner.run_suites` writes to results.json
({"meta": {...}, "suites": {key: suite_result}}) and draws what each suite left in its `figures` / `samples`:
the modality-gap shift curve and a PCA of both modalities (geometry), confusion matrices (zeroshot), POPE bars per
sampler, accuracy per probe type, and thumbnails with answers, hallucinated words highlighted.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img.fig{max-width:520px;margin:4px}mark{background:#ffb3b3}.wrong{color:#b00}
.ok{color:#070}details{margin:.5em 0}code{font-size:90%}img.thumb{width:96px;image-rendering:pixelated}"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _table(rows: list[tuple], header: tuple) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _save(fig, out_dir: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out_dir / name, dpi=90)
    plt.close(fig)
    return name


def _gap_curve(curve: dict, out: Path, key: str) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(curve["lambdas"], curve["loss"], "o-", color="C0", label="contrastive loss")
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("shift λ (0 = trained, 0.5 ≈ gap closed)")
    ax.set_ylabel(f"loss at s = {curve.get('logit_scale', float('nan')):.1f}")
    ax2 = ax.twinx()
    ax2.plot(curve["lambdas"], curve["gap_norm"], "s--", color="C1", ms=3, label="gap norm")
    ax2.set_ylabel("‖gap‖")
    fig.legend(loc="upper center", fontsize=8)
    return _save(fig, out, f"{key}_gap_curve.png")


def _pca(pca: dict, out: Path, key: str) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, color in (("image", "C0"), ("text", "C3")):
        p = np.asarray(pca[name]).reshape(-1, 2)
        ax.scatter(p[:, 0], p[:, 1], s=8, c=color, alpha=0.6, label=name)
    for a, b in zip(np.asarray(pca["image"])[:30], np.asarray(pca["text"])[:30]):  # a few pair lines show the gap
        ax.plot([a[0], b[0]], [a[1], b[1]], color="grey", lw=0.3)
    ev = pca.get("explained", [0, 0])
    ax.set_xlabel(f"PC1 ({100 * ev[0]:.0f}%)")
    ax.set_ylabel(f"PC2 ({100 * ev[1]:.0f}%)")
    ax.legend(fontsize=8)
    return _save(fig, out, f"{key}_pca.png")


def _confusion(conf: dict, out: Path, key: str) -> str:
    m = np.asarray(conf["matrix"])
    names = conf.get("classnames") or [str(i) for i in range(len(m))]
    size = min(10, 2.5 + 0.35 * len(m))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(m)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(m)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(m) <= 15:
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
    return _save(fig, out, f"{key}_confusion.png")


def _bars(groups: dict[str, dict[str, float]], keys: list[str], out: Path, name: str, ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(groups) * len(keys) / 3), 3.2))
    width = 0.8 / len(keys)
    for j, k in enumerate(keys):
        vals = [groups[g].get(k, 0.0) for g in groups]
        ax.bar(np.arange(len(groups)) + j * width, vals, width, label=k)
    ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2, list(groups))
    ax.set_ylim(0, 1.3)  # headroom for the legend above the bars
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel(ylabel)
    if len(keys) > 1:
        ax.legend(fontsize=7, ncol=len(keys))
    return _save(fig, out, name)


def _highlight(text: str, words: list[str]) -> str:
    out = html.escape(text)
    for w in sorted(set(words), key=len, reverse=True):
        out = re.sub(rf"\b({re.escape(html.escape(w))})\b", r"<mark>\1</mark>", out)
    return out


def _gallery(samples: list[dict]) -> str:
    rows = []
    for s in samples:
        img = f'<img class="thumb" src="{html.escape(s["image"])}">' if s.get("image") else ""
        cls = "" if "correct" not in s else (' class="ok"' if s["correct"] else ' class="wrong"')
        answer = _highlight(str(s.get("answer", "")), s.get("highlight", []))
        rows.append(
            f"<tr><td>{img}</td><td>{html.escape(str(s.get('prompt', '')))}</td>"
            f"<td{cls}>{answer}</td><td>{html.escape(str(s.get('truth', '')))}</td></tr>"
        )
    return "<table><tr><th>image</th><th>prompt</th><th>answer</th><th>truth</th></tr>" + "".join(rows) + "</table>"


def _figures_for(key: str, res: dict, out: Path) -> list[str]:
    figs, f = [], res.get("figures") or {}
    if "gap_curve" in f:
        figs.append(_gap_curve(f["gap_curve"], out, key))
    if "pca" in f:
        figs.append(_pca(f["pca"], out, key))
    if "confusion" in f:
        figs.append(_confusion(f["confusion"], out, key))
    if "pope_samplers" in f:
        figs.append(
            _bars(
                f["pope_samplers"],
                ["accuracy", "precision", "recall", "f1", "yes_ratio"],
                out,
                f"{key}_pope.png",
                "POPE",
            )
        )
    if "per_type" in f:
        figs.append(
            _bars(
                {t: {"accuracy": v} for t, v in f["per_type"].items()},
                ["accuracy"],
                out,
                f"{key}_per_type.png",
                "accuracy (chance 0.5)",
            )
        )
    return figs


def write_report(results: dict, out_dir, extra_figures: dict[str, str] | None = None) -> Path:
    """Write report.html (+ PNGs) into out_dir; extra_figures maps a caption to an existing PNG to include."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suites = results.get("suites")
    if not isinstance(suites, dict):
        raise ValueError("write_report expects {'meta': ..., 'suites': {name: suite_result}} (see eval.runner)")
    meta = results.get("meta", {})
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>modalign eval</title><style>{_CSS}</style>"
        "</head><body><h1>modalign evaluation</h1>"
    ]
    if meta:
        parts.append(_table([(k, v) for k, v in meta.items()], ("", "")))
    summary = [(key, k, v) for key, r in suites.items() for k, v in r.get("metrics", {}).items()]
    parts.append("<h2>Summary</h2>" + _table(summary, ("suite", "metric", "value")))
    for key, res in suites.items():
        parts.append(f"<h2 id='{html.escape(key)}'>{html.escape(key)}</h2>")
        parts.append(_table(list(res.get("metrics", {}).items()), ("metric", "value")))
        for name in _figures_for(key, res, out):
            parts.append(f'<img class="fig" src="{name}" alt="{html.escape(name)}">')
        if res.get("samples"):
            parts.append("<h3>samples</h3>" + _gallery(res["samples"]))
        settings = [(k, v) for k, v in res.get("settings", {}).items()]
        parts.append("<details><summary>settings</summary>" + _table(settings, ("setting", "value")) + "</details>")
    if extra_figures:
        parts.append("<h2>More figures</h2>")
        for caption, path in extra_figures.items():
            src = Path(path)
            if not src.exists():
                raise FileNotFoundError(f"extra figure {caption!r}: {src} does not exist")
            if src.resolve().parent != out.resolve():
                shutil.copy(src, out / src.name)
            parts.append(
                f'<figure><img class="fig" src="{html.escape(src.name)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    path = out / "report.html"
    path.write_text("\n".join(parts))
    return path
