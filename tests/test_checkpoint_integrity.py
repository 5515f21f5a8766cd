"""Checkpoints verified: every file's sha256 is recorded and checked on resume, a damaged newest checkpoint falls
back to the previous intact one (same final weights as an uninterrupted run), files are fsynced before the rename,
and one output folder has one writer."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from train_toys import DATASETS, final_state, toy_builder, toy_recipe

from modalign import files
from modalign.registry import ConfigError
from modalign.trainer import checkpoint as ckpt
from modalign.trainer import run_recipe
from modalign.trainer.integrity import verify_checkpoint
from modalign.trainer.lock import output_lock

STAGES = [
    {"name": "a", "train": ["vision", "head"], "steps": 7, "checkpoint_every": 2, "data": {"name": "toy", "n": 10}}
]


def run(out, **kw):
    return run_recipe(
        toy_recipe(STAGES), out, progress=False, model_builder=toy_builder(dropout=0.2), datasets=DATASETS, **kw
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    run(out)
    return final_state(out)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


DAMAGE = {
    "flipped byte in the tensors": ("model.safetensors", flip_byte, "does not match the sha256"),
    "truncated optimizer tensors": (
        "optimizer.safetensors",
        lambda p: p.write_bytes(p.read_bytes()[:100]),
        "does not match the sha256",
    ),
    "deleted RNG file": ("rng-rank0.safetensors", Path.unlink, "is missing"),
    "flipped byte in the RNG JSON": ("rng-rank0.json", flip_byte, "does not match the sha256"),
    "empty state.json": ("state.json", lambda p: p.write_text(""), "not valid JSON"),
    "state.json edited (sampler position)": (
        "state.json",
        lambda p: p.write_text(p.read_text().replace('"index": 6', '"index": 7')),
        "does not match its own recorded sha256",
    ),
    "state.json without its fields": ("state.json", lambda p: p.write_text("{}"), "lacks"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_intact_one(tmp_path, reference, kind):
    name, damage, message = DAMAGE[kind]
    run(tmp_path, stop_after_steps=5)  # checkpoints at steps 2 and 4
    newest = ckpt.checkpoint_dir(tmp_path) / "step-00000004"
    damage(newest / name)
    with pytest.warns(UserWarning, match=f"step-00000004 is damaged .*{name}.*{message}"):
        out = run(tmp_path, resume=True)
    assert out["resumed_from"].endswith("step-00000002")
    assert (ckpt.checkpoint_dir(tmp_path) / "damaged-step-00000004").is_dir()  # kept for a look, out of the way
    got = final_state(tmp_path)
    assert all(torch.equal(reference[k], got[k]) for k in reference)


def test_every_file_is_recorded_and_no_damage_goes_unseen(tmp_path):
    run(tmp_path, stop_after_steps=2)
    d = ckpt.checkpoint_dir(tmp_path) / "step-00000002"
    state = verify_checkpoint(d)
    assert sorted(state["files"]) == sorted(p.name for p in d.iterdir() if p.name != "state.json")
    files.sha256_file(d / "optimizer.json")  # cached now; an in-place change within one mtime tick must still show
    flip_byte(d / "optimizer.json")
    with pytest.raises(ConfigError, match=r"optimizer\.json does not match"):
        verify_checkpoint(d)


def test_no_intact_checkpoint_is_an_error_naming_each(tmp_path):
    run(tmp_path, stop_after_steps=5)
    for step in ("step-00000002", "step-00000004"):
        flip_byte(ckpt.checkpoint_dir(tmp_path) / step / "model.safetensors")
    with pytest.warns(UserWarning), pytest.raises(ConfigError, match="no intact checkpoint.*step-00000004.*step-0000"):
        run(tmp_path, resume=True)


def test_files_and_directories_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_rename = os.fsync, Path.rename
    monkeypatch.setattr(
        files.os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))
    )

    def rename(self, target):
        renamed.append((str(self), str(target), list(synced)))
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    run(tmp_path, stop_after_steps=2)
    (src, dst, before) = next(r for r in renamed if r[1].endswith("step-00000002"))
    written = sorted(str(p).replace("step-00000002", Path(src).name) for p in Path(dst).iterdir())
    assert set(written) <= set(before) and src in before  # every file and the directory itself, before the rename
    assert str(ckpt.checkpoint_dir(tmp_path)) in synced[len(before) :]  # and the parent after it


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    # another run, as the kernel sees it: flock on out_dir/.lock holding its pid (without torch's import time)
    holder = textwrap.dedent(
        f"""
        import fcntl, os, time
        fd = os.open({str(tmp_path / ".lock")!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, str(os.getpid()).encode())
        print("held", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=rf"being written by another run \(pid {proc.pid}\)"):
            run(tmp_path)
        assert not ckpt.checkpoint_dir(tmp_path).exists()
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 30
    while True:  # the kernel drops a dead holder's lock: no stale lock to clean up
        try:
            with output_lock(tmp_path):
                break
        except ConfigError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    with output_lock(tmp_path):  # re-entrant within one process (run_recipe inside api.run_recipe)
        assert run(tmp_path)["global_step"] == 7


def test_a_checkpoint_written_before_newer_settings_existed_still_resumes(tmp_path, reference):
    run(tmp_path, stop_after_steps=5)
    path = ckpt.checkpoint_dir(tmp_path) / "step-00000004" / "state.json"
    state = json.loads(path.read_text())
    del state["state_sha256"]  # as an older modalign wrote it: no digest, no max_bad_steps, no `positives`
    for stage in state["recipe"]["stages"]:
        del stage["max_bad_steps"]
    del state["recipe"]["model"]["positives"]
    path.write_text(json.dumps(state))
    assert run(tmp_path, resume=True)["resumed_from"].endswith("step-00000004")
    got = final_state(tmp_path)
    assert all(torch.equal(reference[k], got[k]) for k in reference)
