import json

import pytest

from modalign.data.fashion_mnist import DEFAULT_ROOT
from modalign.quickstart import HEADLINES, run_quickstart


@pytest.mark.slow
def test_quickstart_smoke_run_reports_every_headline(tmp_path):
    parts = ["siglip", "llava"] + (["lit"] if DEFAULT_ROOT.exists() else [])
    summary = run_quickstart(tmp_path, fast=True, parts=parts)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for part in parts:
        suites = saved["parts"][part]["suites"]
        for key, metric in HEADLINES[part]:
            assert metric in suites[key]["metrics"], (part, key, metric)  # a renamed metric must not vanish
        assert (tmp_path / part / "eval" / "report.html").exists()
    html = (tmp_path / "report.html").read_text()
    assert "loss_curves.png" in html and (tmp_path / "loss_curves.png").exists()
    assert summary["fast"] is True
