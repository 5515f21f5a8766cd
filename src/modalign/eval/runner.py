"""Run evaluation suites on one model: build each suite's dataset, run it, write results.json and report.html.

`run_suites(model, evals, out_dir, datasets_registry)` takes the recipe's `eval:` list (config.EvalConfig: a suite
name, a `data:` component and the suite's parameters). Bad suite or dataset names and unknown parameters fail
before anything runs, with the list of what is accepted; `check_evals` checks a whole list (datasets built too)
so that a recipe's mistakes surface before its training starts.
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..config import EvalConfig, data_dump, is_spec
from ..registry import ConfigError, build, check_param_values
from .corruptions import CorruptedDataset, parse_corruption
from .report import write_report
from .suites import SUITES
from .suites.common import model_fingerprint


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.detach().cpu().tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"cannot write {type(o).__name__} to results.json")


def _check(ev: EvalConfig, datasets_registry) -> None:
    if ev.suite not in SUITES:
        raise ConfigError(f"unknown eval suite {ev.suite!r}; choose one of: {', '.join(sorted(SUITES))}")
    if ev.data is None:
        raise ConfigError(f"eval suite {ev.suite!r} needs `data:` (e.g. data: {{name: shapes, task: caption}})")
    if is_spec(ev.data) and ev.data.name not in datasets_registry:
        raise ConfigError(f"unknown dataset {ev.data.name!r}; choose one of: {', '.join(sorted(datasets_registry))}")
    allowed = set(inspect.signature(SUITES[ev.suite]).parameters) - {"model", "dataset", "out_dir"}
    allowed.add("corrupt")  # any suite: its images are corrupted before it sees them (eval/corruptions.py)
    if ev.params().get("corrupt") is not None:
        try:
            parse_corruption(ev.params()["corrupt"])
        except ValueError as err:
            raise ConfigError(f"eval suite {ev.suite!r}: {err}") from None
    unknown = sorted(set(ev.params()) - allowed)
    if unknown:
        raise ConfigError(
            f"eval suite {ev.suite!r} does not take {', '.join(unknown)}; "
            f"its parameters are: {', '.join(sorted(allowed))}"
        )
    check_param_values(SUITES[ev.suite], "eval suite", ev.suite, ev.params())


def _build_dataset(ev: EvalConfig, datasets_registry):
    if not is_spec(ev.data):
        return ev.data
    try:
        return build(datasets_registry, "dataset", ev.data.name, **ev.data.params())
    except ConfigError:
        raise
    except (ValueError, OSError) as err:  # a missing file, a bad record under strict reading, a bad option
        raise ConfigError(f"eval suite {ev.suite!r}: dataset {ev.data.name!r}: {err}") from err


def check_evals(evals: list, datasets_registry=None, where: str = "eval") -> list[EvalConfig]:
    """Everything about an `eval:` list that can fail, checked before any training: suites and their parameters,
    and each dataset built once (so a missing path or an unknown option is found now, not after the last stage)."""
    if datasets_registry is None:
        from ..data import DATASETS as datasets_registry
    evals = [e if isinstance(e, EvalConfig) else EvalConfig.model_validate(e) for e in evals]
    for k, ev in enumerate(evals):
        try:
            _check(ev, datasets_registry)
            _build_dataset(ev, datasets_registry)
        except ConfigError as err:
            raise ConfigError(f"{where}[{k}] ({ev.suite}): {err}") from err
    return evals


def result_key(ev: EvalConfig, taken: set[str]) -> str:
    """The suite name, made unique by the dataset and a counter when one suite runs several times."""
    key = ev.suite
    if key in taken and ev.data is not None:
        key = f"{ev.suite}:{ev.data.name if is_spec(ev.data) else type(ev.data).__name__}"
    base, n = key, 2
    while key in taken:
        key, n = f"{base}#{n}", n + 1
    return key


def run_suite(model, ev: EvalConfig, out_dir=None, datasets_registry=None, progress: bool = True) -> dict:
    """One suite on its dataset (a spec to build, or a Dataset object); `out_dir` None writes no gallery files."""
    if datasets_registry is None:
        from ..data import DATASETS as datasets_registry
    _check(ev, datasets_registry)
    dataset = _build_dataset(ev, datasets_registry)
    params = ev.params()
    corruption = params.pop("corrupt", None)
    if corruption is not None:
        try:
            name, severity = parse_corruption(corruption)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        dataset = CorruptedDataset(dataset, name, severity, int(params.get("seed", 0)))
    suite = SUITES[ev.suite]
    if "out_dir" in inspect.signature(suite).parameters:
        params["out_dir"] = out_dir
    params.setdefault("progress", progress)
    torch.manual_seed(int(params.get("seed", 0)))  # suites that sample anything are repeatable
    start = time.time()
    res = suite(model, dataset, **params)
    res["settings"]["data"] = data_dump(ev.data)
    if corruption is not None:
        res["settings"]["corruption"] = {"name": name, "severity": severity}
    res["settings"]["seconds"] = round(time.time() - start, 2)
    return res


def run_suites(
    model,
    evals: list[EvalConfig],
    out_dir,
    datasets_registry=None,
    progress: bool = True,
    meta: dict | None = None,
    report: bool = True,
) -> dict:
    """Run every eval; returns {"meta": ..., "suites": {key: result}} (also written to out_dir/results.json)."""
    if datasets_registry is None:
        from ..data import DATASETS as datasets_registry
    evals = [e if isinstance(e, EvalConfig) else EvalConfig.model_validate(e) for e in evals]
    if not evals:
        raise ConfigError("no evaluations to run: give at least one suite")
    for ev in evals:
        _check(ev, datasets_registry)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "meta": {
            "model_hash": model_fingerprint(model),
            "model_class": type(model).__name__,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            **(meta or {}),
        },
        "suites": {},
    }
    for ev in evals:
        res = run_suite(model, ev, out, datasets_registry, progress)
        results["suites"][result_key(ev, set(results["suites"]))] = res
        # written after every suite so a crash later still leaves the finished results
        (out / "results.json").write_text(json.dumps(results, indent=1, default=_jsonable))
    if report:
        write_report(results, out)
    return json.loads((out / "results.json").read_text())
