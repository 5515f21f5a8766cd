"""File helpers every layer shares: content hashes (cached per file version) and writes that are never half-done.

`sha256_file` names the exact bytes a result or a saved model depends on; a file is hashed once per (path, size,
mtime) in a process, so checking a packaged 100 MB weight file on every load costs one read. `write_atomic` and
`publish_dir` write into a temporary name, fsync, then rename, so a crash leaves the old version or the new one,
never a torn file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

_HASHES: dict[tuple[str, int, int], str] = {}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx")


def sha256_file(path: str | Path, fresh: bool = False) -> str:
    """Hex sha256 of a file's bytes (cached for an unchanged file). `fresh=True` always reads the bytes: integrity
    checks use it, because a file changed in place within the filesystem's timestamp granularity (a few ms) keeps
    its size and mtime, and the cache would vouch for bytes that are no longer there."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if fresh or key not in _HASHES:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def sha256_files(paths: Iterable[str | Path], root: str | Path | None = None) -> str:
    """One sha256 over several files: each file's relative name and content hash, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        name = str(p.relative_to(root)) if root is not None else p.name
        h.update(name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def weights_sha256(directory: str | Path) -> str:
    """The sha256 of a checkpoint directory's weight files (what a frozen part loaded from it depends on)."""
    d = Path(directory)
    files = [p for p in d.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"{d} holds no weight files ({', '.join(WEIGHT_SUFFIXES)})")
    return sha256_files(files, d)


def fsync_dir(directory: str | Path) -> None:
    """Make a rename or a new entry in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(directory: str | Path) -> None:
    """fsync every file under `directory`, then the directories themselves."""
    d = Path(directory)
    for p in sorted(d.rglob("*")):
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    for sub in sorted({p.parent for p in d.rglob("*")} | {d}, key=lambda x: -len(x.parts)):
        fsync_dir(sub)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write `data` to `path` through a temporary file, fsync and rename."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)
    fsync_dir(p.parent)


def cache_dir() -> Path:
    """Where converted or assembled pretrained parts live: $MODALIGN_CACHE or ~/.cache/modalign."""
    return Path(os.environ.get("MODALIGN_CACHE") or Path.home() / ".cache" / "modalign")


@contextlib.contextmanager
def locked(path: str | Path):
    """An exclusive advisory lock (fcntl) on `path` held for the block; released when the process dies."""
    import fcntl

    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def quiet_hf_loading():
    """No per-tensor progress bars while transformers loads a small checkpoint (they flood logs and tests)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
