"""Crash safety as a hostile operator tests it: a real training process killed with SIGKILL again and again, at
random moments and inside checkpoint writes, each time resumed; the final weights equal an uninterrupted run's
bit for bit. A decompression bomb under skip_bad is skipped by a real run instead of crashing it on every resume."""

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from hostile_images import bomb_png, png
from PIL import Image
from safetensors.torch import load_file

import modalign

SCRIPT = Path(__file__).parent / "dist_scripts" / "kill_target.py"
KILLS = 8  # half at random moments, half inside checkpoint writes; each costs one start-up


class Run:
    """One training process; its stdout lines arrive on a queue (read by a thread, so waits can time out)."""

    def __init__(self, out: Path, resume: bool):
        src = str(Path(modalign.__file__).parents[1])
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
        }
        cmd = [sys.executable, str(SCRIPT), str(out)] + (["--resume"] if resume else [])
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def wait_for(self, prefix: str, timeout: float = 180.0) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} from the training process") from None
            if line is None or line.startswith(prefix):
                return line

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def finish(self) -> None:
        assert self.proc.wait(timeout=300) == 0, self.proc.stderr.read()[-3000:]


def weights(out: Path) -> dict:
    return load_file(str(out / "final" / "model.safetensors"))


@pytest.mark.slow
def test_sigkill_at_random_moments_and_inside_checkpoint_writes_then_resume_is_exact(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    from kill_target import train

    train(tmp_path / "ref")  # uninterrupted, in this process (one start-up fewer)
    rng = random.Random(1234)
    out, resume, inside_write = tmp_path / "cut", False, 0
    for k in range(KILLS):
        run = Run(out, resume)
        assert run.wait_for("train-begin") == "train-begin"
        if k % 2:  # inside a checkpoint write: after it began, before it ended
            begun = run.wait_for("ckpt-begin")
            assert begun is not None, "the run ended before every kill landed: lengthen kill_target's stages"
            time.sleep(rng.uniform(0.0, 0.06))
        else:  # any moment: model build, a step, a log write, a save ...
            time.sleep(rng.uniform(0.0, 1.0))
        assert run.proc.poll() is None, "the run ended before every kill landed: lengthen kill_target's stages"
        run.kill()
        if k % 2:
            rest = []
            while (line := run.lines.get(timeout=10)) is not None:
                rest.append(line)
            inside_write += f"ckpt-end {begun.split()[1]}" not in rest
        resume = True
    Run(out, resume).finish()
    assert inside_write >= KILLS // 2 - 1  # the writes take ~0.1 s; a kill 0-60 ms in lands inside one
    want, got = weights(tmp_path / "ref"), weights(out)
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)


@pytest.mark.slow
def test_a_bomb_under_skip_bad_is_skipped_by_a_real_run(tmp_path):
    from modalign.api import run_recipe
    from modalign.config import RecipeConfig

    sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
    from train_toys import dual_recipe

    (tmp_path / "img").mkdir()
    for k in range(6):
        (tmp_path / "img" / f"{k}.png").write_bytes(png(Image.new("RGB", (32, 32), (40 * k, 0, 0))))
    (tmp_path / "img" / "bomb.png").write_bytes(bomb_png())
    rows = [f"img/{k}.png,shape {k}" for k in range(6)] + ["img/bomb.png,a bomb"]
    (tmp_path / "c.csv").write_text("image,caption\n" + "\n".join(rows) + "\n")
    data = {"name": "image-captions", "path": str(tmp_path / "c.csv")}
    raw = dual_recipe().model_dump()
    for s in raw["stages"]:
        s.update(data=data, skip_bad=True, steps=2)
    recipe = RecipeConfig.model_validate(raw)
    with pytest.warns(UserWarning, match="decompression bomb"):
        result = run_recipe(recipe, tmp_path / "run", progress=False)
    assert result["train"]["global_step"] == 4 and (tmp_path / "run" / "final" / "model.safetensors").is_file()
