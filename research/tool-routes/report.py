"""The comparison table (markdown, printed) and the robustness figure (docs/figures/tool_routes_robustness.png) from
compare.py's JSON lines.

  PYTHONPATH=src python research/tool-routes/report.py runs/tool-routes/clean.jsonl runs/tool-routes/robust.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SET_ORDER = ["fashion", "shapes", "photos"]
FIGURE = Path("docs/figures/tool_routes_robustness.png")


def rows(path: str) -> list[dict]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def table(clean: list[dict]) -> str:
    by = defaultdict(dict)
    for r in clean:
        if r["corrupt"] is None:
            by[r["route"]][r["set"]] = r
    head = "| route | " + " | ".join(f"{s} acc | {s} s/q (cpu)" for s in SET_ORDER) + " | trained params (per set) |"
    lines = [head, "|" + "---|" * (2 + 2 * len(SET_ORDER))]
    for route, sets in by.items():
        cells = []
        for s in SET_ORDER:
            r = sets.get(s)
            cells += (
                [f"{r['accuracy']:.2f} ({r['n']})", f"{r['s_per_q']:.1f} ({r['cpu_s_per_q']:.2f})"] if r else ["-", "-"]
            )
        params = " / ".join(f"{sets[s]['trained_params'] / 1e6:.2f}M" for s in SET_ORDER if s in sets)
        lines.append(f"| {route} | " + " | ".join(cells) + f" | {params} |")
    return "\n".join(lines)


def figure(robust: list[dict], set_name: str) -> None:
    curves = defaultdict(lambda: defaultdict(dict))  # corruption -> route -> severity -> acc
    for r in robust:
        if r["set"] == set_name and r["corrupt"]:
            name, sev = r["corrupt"].split(":")
            curves[name][r["route"]][int(sev)] = r["accuracy"]
    for r in robust:  # severity 0: the same questions, clean
        if r["set"] == set_name and r["corrupt"] is None:
            for name in curves:
                if r["route"] in curves[name]:
                    curves[name][r["route"]][0] = r["accuracy"]
    names = sorted(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2), sharey=True)
    for ax, name in zip(axes if len(names) > 1 else [axes], names):
        for route, pts in sorted(curves[name].items()):
            xs = sorted(pts)
            ax.plot(xs, [pts[x] for x in xs], marker="o", label=route)
        ax.set_title(name)
        ax.set_xlabel("severity")
        ax.set_xticks(range(6))
        ax.grid(alpha=0.3)
    (axes[0] if len(names) > 1 else axes).set_ylabel(f"accuracy ({set_name})")
    axes[-1].legend(fontsize=7) if len(names) > 1 else axes.legend(fontsize=7)
    fig.tight_layout()
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURE, dpi=110)
    print(f"wrote {FIGURE}")


def robust_table(robust: list[dict]) -> str:
    """Route x corruption: clean accuracy, then the mean over severities 1..5 of each corruption."""
    acc = defaultdict(lambda: defaultdict(list))
    for r in robust:
        name = r["corrupt"].split(":")[0] if r["corrupt"] else "clean"
        acc[r["route"]][name].append(r["accuracy"])
    names = ["clean", *sorted({n for a in acc.values() for n in a} - {"clean"})]
    lines = ["| route | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for route, a in acc.items():
        cells = [f"{sum(a[n]) / len(a[n]):.2f}" if a.get(n) else "-" for n in names]
        lines.append(f"| {route} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    clean = rows(sys.argv[1])
    robust = rows(sys.argv[2]) if len(sys.argv) > 2 else []
    print(table(clean))
    if robust:
        print()
        print(robust_table(robust))
        figure(robust, robust[0]["set"])


if __name__ == "__main__":
    main()
