"""The main job runs from an installed package: the project built as a wheel, installed (not editable) into a fresh
virtualenv outside the checkout, runs `modalign quickstart --fast` from a folder with no recipes in sight, and its
report carries every headline metric of every part (a smoke run: the numbers mean nothing)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from modalign.data.fashion_mnist import DEFAULT_ROOT
from modalign.quickstart import HEADLINES

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_quickstart_runs_from_a_non_editable_install(tmp_path):
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)], timeout=600)
    (wheel,) = wheels.glob("modalign-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    # the dependencies (torch, transformers, the packaged towers) come from this environment, not a second download:
    # a .pth file adds its site-packages after the new venv's own, where the wheel is installed
    (next(venv.glob("lib/python*/site-packages")) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODALIGN_RECIPES")}
    env["OMP_NUM_THREADS"] = "1"
    # without PYTHONPATH: a src/ on it holds the egg-info the wheel build leaves, and pip would take that for an
    # installed modalign and install nothing
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], env=env, timeout=600)
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import modalign; print(modalign.__file__)"], cwd=tmp_path, env=env
    )
    assert str(venv) in where and str(ROOT) not in where
    out = tmp_path / "q"
    _run(
        [str(venv / "bin" / "modalign"), "quickstart", "--fast", "--out", str(out)], cwd=tmp_path, env=env, timeout=1200
    )
    # every headline the report promises is there (a renamed metric must not vanish), for every part that ran
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["parts"]) == {"siglip", "llava"} | ({"lit"} if DEFAULT_ROOT.exists() else set())
    for part, result in saved["parts"].items():
        for key, metric in HEADLINES[part]:
            assert metric in result["suites"][key]["metrics"], (part, key, metric)
        assert (out / part / "eval" / "report.html").exists()
    html = (out / "report.html").read_text()
    assert "loss_curves.png" in html and (out / "loss_curves.png").exists() and saved["fast"] is True
