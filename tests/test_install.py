"""The main job runs from an installed package: the project built as a wheel, installed (not editable) into a fresh
virtualenv outside the checkout, runs `modalign quickstart --fast` from a folder with no recipes in sight."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

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
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], timeout=600)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MODALIGN_RECIPES")}
    env["OMP_NUM_THREADS"] = "1"
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import modalign; print(modalign.__file__)"], cwd=tmp_path, env=env
    )
    assert str(venv) in where and str(ROOT) not in where
    out = tmp_path / "q"
    _run(
        [str(venv / "bin" / "modalign"), "quickstart", "--fast", "--out", str(out)], cwd=tmp_path, env=env, timeout=1200
    )
    assert (out / "report.html").is_file() and (out / "metrics.json").is_file()
