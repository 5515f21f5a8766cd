"""run_suites end to end on fake models and an in-test dataset registry; compare_runs; the CLI argument parsing."""

import argparse
import json

import numpy as np
import pytest
from fakes import KeyedDualEncoder, ListDataset, color_image

from modalign.cli.eval import add_compare_parser, add_eval_parser, build_evals, parse_data
from modalign.config import EvalConfig
from modalign.eval.compare import compare_runs, compare_runs_dict
from modalign.eval.runner import run_suites
from modalign.registry import ConfigError

E = np.eye(4)


def captions(n: int = 4, wrong: int = 0):
    # image k <-> text "tk"; the first `wrong` texts point at the next image's vector
    return ListDataset(
        [
            {"id": f"i{k}", "image": color_image(k), "text": f"t{(k + (k < wrong)) % n}", "label": k % 2, "meta": {}}
            for k in range(n)
        ],
        classnames=["even", "odd"],
        templates=["{}"],
    )


def model():
    return KeyedDualEncoder(
        {k: E[k] + 0.5 * E[(k + 1) % 4] for k in range(4)},
        lambda t: E[int(t[1])] if t[0] == "t" else (E[0] + E[2] if t == "even" else E[1] + E[3]),
    )


REGISTRY = {"fake-captions": captions}


def test_run_suites_writes_results_and_report(tmp_path):
    evals = [
        EvalConfig(suite="retrieval", data={"name": "fake-captions"}, ks=[1, 2]),
        EvalConfig(suite="geometry", data={"name": "fake-captions"}, k=2),
        EvalConfig(suite="retrieval", data={"name": "fake-captions", "wrong": 2}, ks=[1]),
    ]
    res = run_suites(model(), evals, tmp_path / "a", REGISTRY, progress=False)
    assert list(res["suites"]) == ["retrieval", "geometry", "retrieval:fake-captions"]
    assert res["suites"]["retrieval"]["metrics"]["t2i_R@1"] == 1.0
    assert res["suites"]["retrieval:fake-captions"]["metrics"]["t2i_R@1"] == 0.5
    assert res["suites"]["retrieval:fake-captions"]["settings"]["data"] == {"name": "fake-captions", "wrong": 2}
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert saved["meta"]["model_hash"] == res["meta"]["model_hash"]
    assert (tmp_path / "a" / "report.html").exists() and (tmp_path / "a" / "geometry_gap_curve.png").exists()

    run_suites(model(), evals[2:], tmp_path / "b", REGISTRY, progress=False)
    d = compare_runs_dict([tmp_path / "a", tmp_path / "b" / "results.json"])
    assert d["runs"] == ["a", "b"]
    assert d["rows"]["retrieval/t2i_R@1"] == [1.0, 0.5] and d["rows"]["geometry/gap_norm"][1] is None
    table = compare_runs([tmp_path / "a", tmp_path / "b"])
    assert "retrieval/t2i_R@1" in table and "-0.5000" in table


def test_bad_evals_fail_before_running(tmp_path):
    with pytest.raises(ConfigError, match="choose one of"):
        run_suites(model(), [EvalConfig(suite="nope", data={"name": "fake-captions"})], tmp_path, REGISTRY)
    with pytest.raises(ConfigError, match="does not take typo"):
        run_suites(model(), [EvalConfig(suite="retrieval", data={"name": "fake-captions"}, typo=1)], tmp_path, REGISTRY)
    with pytest.raises(ConfigError, match="unknown dataset"):
        run_suites(model(), [EvalConfig(suite="retrieval", data={"name": "x"})], tmp_path, REGISTRY)
    with pytest.raises(ConfigError, match="no results.json"):
        compare_runs([tmp_path / "missing"])


def test_cli_parsing():
    c = parse_data("shapes:task=pope,n=20,pope_samplers=[random,popular]")
    assert c.name == "shapes" and c.params() == {"task": "pope", "n": 20, "pope_samplers": ["random", "popular"]}
    evals = build_evals("retrieval,geometry", ["shapes:task=caption"], ["batch_size=8"])
    assert [e.suite for e in evals] == ["retrieval", "geometry"] and evals[1].params() == {"batch_size": 8}
    with pytest.raises(ConfigError, match="one per suite"):
        build_evals("a,b,c", ["x", "y"], [])
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_eval_parser(sub)
    add_compare_parser(sub)
    args = parser.parse_args(["eval", "ckpt", "--suite", "pope", "--data", "shapes:task=pope", "--out", "o"])
    assert args.checkpoint == "ckpt" and args.func.__name__ == "eval_main"
    assert parser.parse_args(["compare", "a", "b", "--json"]).json is True
