"""`modalign chat` as a person uses it: a real process on a pseudo-terminal, several turns, `<image>` typed in a
later turn, a decompression bomb and a missing file offered as images, a second image, then /quit — exit status 0
and no traceback."""

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hostile_images import bomb_png
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

import modalign
from modalign.cli import main
from modalign.config import Component
from modalign.models.vlm import VisionLanguageModel

PROMPT = "you> "


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_cfg()  # with a registered tower, so that a fresh process can rebuild it
    tower = {"name": "vit", "image_size": 16, "patch_size": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2}
    cfg.vision = Component.model_validate(tower)
    model = VisionLanguageModel.from_config(cfg, text_corpus=CORPUS).eval()
    d = tmp_path_factory.mktemp("chat_pty")
    model.save_pretrained(d / "ckpt")
    images(1)[0].save(d / "a.png")
    images(1, seed=9)[0].save(d / "b.png")
    (d / "bomb.png").write_bytes(bomb_png())
    return d


class Terminal:
    """The master side of a pty whose slave is the child's stdin, stdout and stderr."""

    def __init__(self, argv, cwd):
        self.master, slave = os.openpty()
        # the modalign under test, whatever the working directory
        src = str(Path(modalign.__file__).parents[1])
        path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
        quiet = {"PYTHONWARNINGS": "ignore", "TRANSFORMERS_VERBOSITY": "error"}  # library deprecation notes
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TERM": "dumb", "PYTHONPATH": path, **quiet}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
        os.close(slave)
        self.seen = ""  # read but not yet consumed by read_until
        self.transcript = ""  # everything the chat printed

    def read_until(self, marker: str, timeout: float = 120.0) -> str:
        """Everything up to and including `marker` (a generous timeout: importing torch is slow on a busy box)."""
        deadline = time.monotonic() + timeout
        while marker not in self.seen:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"no {marker!r} from the chat; it printed:\n{self.seen}")
            try:
                chunk = os.read(self.master, 4096).decode(errors="replace")
            except OSError:  # the child closed the terminal
                chunk = ""
            if not chunk:
                raise AssertionError(f"the chat ended before {marker!r}; it printed:\n{self.seen}")
            self.seen += chunk.replace("\r\n", "\n")
            self.transcript += chunk
        head, _, self.seen = self.seen.partition(marker)
        return head

    def say(self, line: str) -> str:
        os.write(self.master, (line + "\n").encode())
        out = self.read_until(PROMPT)
        return out.split("\n", 1)[1] if "\n" in out else ""  # drop the terminal's echo of the line


def test_chat_in_a_terminal(saved):
    d = saved
    cmd = [sys.executable, "-m", "modalign.cli", "chat", str(d / "ckpt"), "--image", str(d / "a.png")]
    term = Terminal(cmd + ["--max-new-tokens", "4"], cwd=d)
    try:
        assert "chatting about" in term.read_until(PROMPT)
        answers = [term.say("What color is the square?"), term.say("And <image> the shape?")]
        assert all(re.search(r"^model> ", a, re.M) for a in answers), answers
        assert "type a question" in term.say("<image>")
        refused = term.say(f"/image {d / 'bomb.png'}")
        assert "cannot open image" in refused and "decompression bomb" in refused
        assert "cannot open image" in term.say(f"/image {d / 'missing.png'}")
        assert "(new image, conversation reset)" in term.say(f"/image {d / 'b.png'}")
        assert re.search(r"^model> ", term.say("Is there a circle?"), re.M)
        os.write(term.master, b"/quit\n")
        assert term.proc.wait(timeout=60) == 0
        assert "Traceback" not in term.transcript
    finally:
        if term.proc.poll() is None:
            term.proc.kill()
        os.close(term.master)


def test_a_bad_first_image_is_one_line_and_status_2(saved, tmp_path, capsys):
    (tmp_path / "bomb.png").write_bytes(bomb_png())
    assert main(["chat", str(saved / "ckpt"), "--image", str(tmp_path / "bomb.png")]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"modalign: image .*bomb\.png: image refused as a decompression bomb .*\n", err)
