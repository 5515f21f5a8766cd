"""Which files a dataset was read from, pinned by content: path, size and sha256 of each.

A reader lists its annotation / question files in `dataset.source_files`; every eval suite's `settings()` records
`file_fingerprints(dataset.source_files)`, so a result names the exact bytes it was measured on. Image folders are
not hashed (tens of thousands of files); their root is recorded instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CACHE: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256: hash each file once


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks, memoised by path, size and modification time)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _CACHE[key] = h.hexdigest()
    return _CACHE[key]


def file_fingerprints(paths) -> list[dict]:
    """[{"path", "bytes", "sha256"}] for each file, in the order given (duplicates dropped)."""
    out, seen = [], set()
    for path in paths or ():
        p = Path(path)
        if str(p) in seen:
            continue
        seen.add(str(p))
        out.append({"path": str(p), "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    return out
