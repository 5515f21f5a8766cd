"""Object synonym lists for CHAIR: a word or phrase found in a caption -> the canonical object it names.

Two file formats:
- JSON `{"canonical": ["synonym", ...], ...}`, e.g. {"person": ["man", "woman", "people"], "dining table": ["table"]};
- the original CHAIR `synonyms.txt` (Rohrbach et al. 2018): one line per object, comma-separated, the first entry
  canonical, e.g. `bicycle, bike, bikes, bicycler`; blank lines and lines starting with # are ignored.
A synonym listed under two objects stays with the first (a word names one object), as in CHAIR's own inverse table.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ..records import BadRecord


def _parse_txt(path: Path) -> list[tuple[str, list[str], str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = [w.strip().lower() for w in line.split(",")]
        words = [w for w in words if w]
        if not words:
            raise BadRecord(f"{path}:{n}: no object name on this line")
        rows.append((words[0], words[1:], f"{path}:{n}"))
    return rows


def _parse_json(path: Path) -> list[tuple[str, list[str], str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BadRecord(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err
    if not isinstance(doc, dict):
        raise BadRecord(f"{path}: expected {{canonical: [synonyms]}}, got {type(doc).__name__}")
    rows = []
    for canon, syns in doc.items():
        if not isinstance(syns, list) or not all(isinstance(s, str) for s in syns):
            raise BadRecord(f"{path}[{canon!r}]: synonyms must be a list of strings")
        rows.append((canon.strip().lower(), [s.strip().lower() for s in syns if s.strip()], f"{path}[{canon!r}]"))
    return rows


def read_synonyms(path) -> dict[str, list[str]]:
    """{canonical: [synonyms]} from a JSON or CHAIR synonyms.txt file (lower-cased, duplicates dropped)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"synonym file {p} does not exist")
    rows = _parse_json(p) if p.suffix.lower() == ".json" else _parse_txt(p)
    vocab: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    moved = []
    for canon, _, where in rows:
        if canon in vocab:
            raise BadRecord(f"{where}: object {canon!r} is listed twice; give each object one line")
        vocab[canon] = []
        owner[canon] = canon
    for canon, syns, _ in rows:
        for s in syns:
            if s not in owner:
                owner[s] = canon
                vocab[canon].append(s)
            elif owner[s] != canon:
                moved.append(f"{s!r} ({owner[s]}, not {canon})")
    if moved:
        warnings.warn(f"{p}: synonyms under two objects kept with the first: {', '.join(moved[:10])}", stacklevel=2)
    return vocab


def canonical_name(name: str, vocabulary: dict[str, list[str]]) -> str | None:
    """The canonical object `name` stands for: itself if canonical, else the object listing it as a synonym."""
    name = name.strip().lower()
    if name in vocabulary:
        return name
    return next((c for c, syns in vocabulary.items() if name in syns), None)
