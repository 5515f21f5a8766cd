"""docs/EVAL.md's worked examples are real: every tiny file it shows is written and read by its reader, and every
command it shows runs through `modalign.cli.main` on a tiny random checkpoint."""

import json
import re
import shlex
from pathlib import Path

import bench_files as bf
import hf_tiny
import pytest

from modalign.cli import main
from modalign.cli.eval import parse_data
from modalign.data import DATASETS
from modalign.data.benchmarks import BENCHMARKS

DOC = Path(__file__).resolve().parents[1] / "docs" / "EVAL.md"
FILE = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)
IMAGES = re.compile(r"<!-- images: (.+?) -->")
BASH = re.compile(r"```bash\n(.*?)```", re.S)
DUAL_SUITES = {"retrieval", "zeroshot", "geometry", "linear_probe"}


def commands(text: str) -> list[list[str]]:
    out = []
    for block in BASH.findall(text):
        for cmd in block.replace("\\\n", " ").splitlines():
            if cmd.strip().startswith("modalign eval"):
                out.append(shlex.split(cmd)[1:])
    return out


def write_doc_files(root: Path) -> list[list[str]]:
    text = DOC.read_text()
    for rel, body in FILE.findall(text):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(body)
    for k, names in enumerate(IMAGES.findall(text)):
        for j, rel in enumerate(names.split()):
            bf.write_image(root / rel, 10 * k + j)
    return commands(text)


def data_specs(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == "--data"]


def test_the_doc_shows_a_file_and_a_command_for_every_reader(tmp_path):
    cmds = write_doc_files(tmp_path)
    used = {parse_data(d).name for c in cmds for d in data_specs(c)}
    assert set(BENCHMARKS) - {"multiple-choice"} <= used  # "multiple-choice" is mmbench's other name
    shown = {rel for rel, _ in FILE.findall(DOC.read_text())}
    named = " ".join(" ".join(c) for c in cmds)
    assert all(rel in named or rel.rsplit("/", 1)[0] in named for rel in shown)


def test_every_file_of_the_doc_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in write_doc_files(tmp_path):
        for spec in data_specs(args):
            comp = parse_data(spec)
            ds = DATASETS[comp.name](**comp.params())
            assert len(ds) > 0 and ds.skipped == 0 and ds[0]["id"], spec
            assert all(Path(f).is_file() for f in ds.source_files)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    return {"generative": hf_tiny.llava(root / "llava"), "dual": hf_tiny.clip(root / "clip")}


def test_every_command_of_the_doc_runs(tmp_path, monkeypatch, checkpoints):
    monkeypatch.chdir(tmp_path)
    for args in write_doc_files(tmp_path):
        suites = args[args.index("--suite") + 1].split(",")
        kind = "dual" if set(suites) <= DUAL_SUITES else "generative"
        args = [str(checkpoints[kind]) if a == "CKPT" else a for a in args] + ["--quiet"]
        assert main(args) == 0, args
        out = Path(args[args.index("--out") + 1])
        results = json.loads((out / "results.json").read_text())["suites"]
        assert set(results) == set(suites)
        for res in results.values():
            assert res["metrics"] and all(len(f["sha256"]) == 64 for f in res["settings"]["files"])
