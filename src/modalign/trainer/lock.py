"""One writer per output folder: an exclusive lock on `out_dir/.lock` for as long as a run writes there.

Two `--resume` processes on one folder would otherwise both load the same checkpoint and overwrite each other's
checkpoints, logs and final model. The lock is `fcntl.flock`, so the kernel releases it when its holder dies (a
kill -9 leaves no stale lock to clean up); the file keeps the holder's pid for the error message. The lock is
re-entrant within a process, so `api.run_recipe` holds it over training and the evaluation that follows while the
trainer takes it too. Where flock does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..registry import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

LOCK_NAME = ".lock"
_held: dict[str, int] = {}  # resolved folder -> depth of nested holds in this process


@contextlib.contextmanager
def output_lock(out_dir: str | Path):
    """Hold `out_dir`'s lock (creating the folder), or raise ConfigError naming the process that holds it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = str(out.resolve())
    if key in _held or fcntl is None:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    fd = os.open(str(out / LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise ConfigError(
            f"{out} is being written by another run (pid {holder}); wait for it to finish or choose another "
            "output folder"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
