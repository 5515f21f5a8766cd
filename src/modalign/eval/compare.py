"""Compare several evaluation runs: one table, a row per suite/metric, a column per results.json.

`compare_runs(paths)` returns the table as text; `compare_runs_dict(paths)` the same numbers as a dict
{"runs": [labels], "rows": {"suite/metric": [value or None per run]}}. A path may be a run directory or its
results.json. Runs are labelled by their directory name (made unique if two are equal).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..registry import ConfigError


def _load(path) -> tuple[str, dict]:
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.exists():
        raise ConfigError(f"{path}: no results.json there (run `modalign eval ... --out DIR` first)")
    data = json.loads(f.read_text())
    if "suites" not in data:
        raise ConfigError(f"{f}: not a modalign results.json (no 'suites')")
    return f.parent.name or str(f.parent), data


def compare_runs_dict(paths) -> dict:
    if not paths:
        raise ConfigError("compare needs at least one run directory or results.json")
    labels, runs = [], []
    for p in paths:
        label, data = _load(p)
        base, n = label, 2
        while label in labels:
            label, n = f"{base}#{n}", n + 1
        labels.append(label)
        runs.append(data)
    rows: dict[str, list] = {}
    for j, data in enumerate(runs):
        for suite, res in data["suites"].items():
            for metric, value in res.get("metrics", {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    rows.setdefault(f"{suite}/{metric}", [None] * len(runs))[j] = value
    return {"runs": labels, "rows": rows, "model_hash": [d.get("meta", {}).get("model_hash") for d in runs]}


def compare_runs(paths) -> str:
    d = compare_runs_dict(paths)
    header = ["metric", *d["runs"]]
    body = [[k, *("-" if v is None else f"{v:.4f}" for v in vals)] for k, vals in d["rows"].items()]
    if len(d["runs"]) == 2:  # the common A/B case: show the difference too
        header.append("delta")
        for row, vals in zip(body, d["rows"].values()):
            row.append("-" if None in vals else f"{vals[1] - vals[0]:+.4f}")
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def line(r):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])
