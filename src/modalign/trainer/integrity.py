"""Which checkpoint a resume may trust: every file checked against the sha256 its state.json records, and state.json
against the digest of its own content.

A checkpoint damaged after it was written (flipped bytes, a truncated tensor file, an emptied state.json, a
deleted RNG file) would otherwise resume silently into a different run, or fail with a traceback that names no
file. `latest_intact` walks the checkpoints newest first, warns about each damaged one (naming the file and what is
wrong), moves it aside to `checkpoints/damaged-step-…` so that it is neither pruned in place of an intact one nor
tried again, and returns the newest intact checkpoint with its state.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

from ..files import sha256_file
from ..registry import ConfigError
from .checkpoint import PREFIX, STATE, checkpoint_dir, state_digest

REQUIRED_STATE = ("stage_index", "stage_step", "stage_done", "global_step", "sampler", "recipe")
# what every checkpoint holds besides state.json (checked by name for checkpoints written before `files` existed)
BASE_FILES = ("model.safetensors", "optimizer.safetensors", "optimizer.json")


class DamagedCheckpoint(ConfigError):
    """A checkpoint's files do not match what it recorded; the message names the file."""


def verify_checkpoint(directory: Path) -> dict:
    """The checkpoint's state if every file is intact, else DamagedCheckpoint naming the first damaged file."""
    directory = Path(directory)
    path = directory / STATE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise DamagedCheckpoint(f"{path} is missing (the checkpoint is incomplete)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedCheckpoint(f"{path} is not valid JSON ({err})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_STATE):
        raise DamagedCheckpoint(f"{path} lacks {[k for k in REQUIRED_STATE if k not in (state or {})]}")
    if "state_sha256" in state and state_digest(state) != state["state_sha256"]:
        raise DamagedCheckpoint(f"{path} does not match its own recorded sha256: the file was changed")
    files = state.get("files")
    if files is None:  # an older checkpoint: the files must at least all be there
        world = int(state.get("world_size", 1))
        files = dict.fromkeys(
            [*BASE_FILES, *(f"rng-rank{r}.{e}" for r in range(world) for e in ("safetensors", "json"))]
        )
    for name, digest in files.items():
        p = directory / name
        if not p.is_file():
            raise DamagedCheckpoint(f"{p} is missing (recorded in {STATE})")
        if digest is not None and sha256_file(p, fresh=True) != digest:
            raise DamagedCheckpoint(f"{p} does not match the sha256 recorded in {STATE}: the file was changed or cut")
    return state


def _candidates(out_dir: Path) -> list[Path]:
    root = checkpoint_dir(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]), reverse=True)


def latest_intact(out_dir: Path) -> tuple[Path | None, dict | None]:
    """(newest intact checkpoint, its state), or (None, None) when the run has none; damaged ones are moved aside
    with a warning. Raises ConfigError when checkpoints exist but none is intact."""
    damaged = []
    for directory in _candidates(out_dir):
        try:
            state = verify_checkpoint(directory)
        except DamagedCheckpoint as err:
            damaged.append(str(err))
            aside = directory.with_name(f"damaged-{directory.name}")
            if aside.exists():
                shutil.rmtree(aside)
            directory.rename(aside)
            warnings.warn(f"checkpoint {directory.name} is damaged ({err}); moved to {aside.name}", stacklevel=2)
            continue
        if damaged:
            warnings.warn(f"resuming from the previous intact checkpoint {directory}", stacklevel=2)
        return directory, state
    if damaged:
        raise ConfigError(
            f"{out_dir}: no intact checkpoint to resume from ({'; '.join(damaged)}); start the run again in a new "
            "output folder (the damaged ones are kept as checkpoints/damaged-step-*)"
        )
    return None, None
