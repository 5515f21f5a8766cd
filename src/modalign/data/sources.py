"""Which files a dataset was read from, pinned by content: path, size and sha256 of each.

A reader lists its annotation / question files in `dataset.source_files`; every eval suite's `settings()` records
`file_fingerprints(dataset.source_files)`, so a result names the exact bytes it was measured on. Image folders are
not hashed (tens of thousands of files); their root is recorded instead.
"""

from __future__ import annotations

from pathlib import Path

from ..files import sha256_file


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
