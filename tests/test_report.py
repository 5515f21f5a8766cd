"""The HTML report renders from a results dict: tables with the numbers, PNG figures beside it, the gallery."""

import re

import numpy as np
import pytest
from PIL import Image

from modalign.eval.report import write_report


def results(tmp_path):
    (tmp_path / "gallery").mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "gallery" / "c0.png")
    rng = np.random.default_rng(0)
    return {
        "meta": {"model_hash": "abc123", "checkpoint": "runs/x/final"},
        "suites": {
            "geometry": {
                "metrics": {"gap_norm": 0.8234, "linear_cka": 0.5},
                "settings": {"logit_scale": 100.0, "model_hash": "abc123"},
                "figures": {
                    "gap_curve": {
                        "lambdas": [0.0, 0.25, 0.5],
                        "loss": [1.0, 0.9, 1.2],
                        "gap_norm": [0.82, 0.41, 0.0],
                        "logit_scale": 100.0,
                    },
                    "pca": {
                        "image": rng.normal(size=(5, 2)).tolist(),
                        "text": rng.normal(size=(5, 2)).tolist(),
                        "explained": [0.6, 0.2],
                    },
                },
            },
            "zeroshot": {
                "metrics": {"top1": 0.75},
                "settings": {},
                "figures": {"confusion": {"matrix": [[2, 0], [1, 1]], "classnames": ["red", "green"]}},
            },
            "pope": {
                "metrics": {"f1": 0.6667, "yes_ratio": 1.0},
                "settings": {"prompt": "Is there?"},
                "figures": {
                    "pope_samplers": {
                        "random": {"accuracy": 0.5, "f1": 0.66, "yes_ratio": 1.0},
                        "popular": {"accuracy": 0.5, "f1": 0.66, "yes_ratio": 1.0},
                    }
                },
            },
            "chair": {
                "metrics": {"CHAIR_i": 0.5},
                "settings": {},
                "samples": [
                    {
                        "id": "c0",
                        "image": "gallery/c0.png",
                        "prompt": "Describe",
                        "answer": "A dog and two cats.",
                        "truth": "dog",
                        "highlight": ["cats"],
                    }
                ],
            },
        },
    }


def test_report_has_numbers_figures_and_highlights(tmp_path):
    path = write_report(results(tmp_path), tmp_path)
    text = path.read_text()
    for number in ("0.8234", "0.7500", "0.6667", "0.5000"):
        assert number in text
    pngs = set(re.findall(r'src="([^"]+\.png)"', text))
    assert {
        "geometry_gap_curve.png",
        "geometry_pca.png",
        "zeroshot_confusion.png",
        "pope_pope.png",
        "gallery/c0.png",
    } <= pngs
    for name in pngs - {"gallery/c0.png"}:
        assert (tmp_path / name).stat().st_size > 1000  # a drawn matplotlib figure, not an empty file
    assert "<mark>cats</mark>" in text and "abc123" in text


def test_extra_figures_are_copied_and_bad_input_explained(tmp_path):
    extra = tmp_path / "elsewhere"
    extra.mkdir()
    Image.new("RGB", (8, 8)).save(extra / "saliency.png")
    out = tmp_path / "out"
    path = write_report({"suites": {}}, out, extra_figures={"attribution": extra / "saliency.png"})
    assert (out / "saliency.png").exists() and "attribution" in path.read_text()
    with pytest.raises(ValueError, match="suites"):
        write_report({"retrieval": {}}, out)
