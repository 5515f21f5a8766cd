"""What every benchmark reader shares: JSON / JSONL / TSV rows named by file and line, an image root that nothing
may leave, lazily decoded images, and the list of source files an eval result pins by sha256.

Built on `readers._LazyImageDataset` and `records.py`: a bad record raises `BadRecord` naming file and line (or
index), or with `skip_bad=True` is skipped, warned about and counted in `dataset.skipped`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

from ..readers import _LazyImageDataset
from ..records import BadRecord, SkipPolicy, decode_image, decode_lines, resolve_under


def existing_file(path, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what} {p} does not exist")
    return p


def image_folder(path, what: str = "image folder") -> Path:
    if path is None:
        raise FileNotFoundError(f"give the {what} (images=DIR)")
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{what} {p} does not exist or is not a directory")
    return p


def load_json(path: Path):
    """The whole file as JSON; an error names the file and the line of the fault."""
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise BadRecord(f"{path}:{line}: bytes are not UTF-8") from err
    except json.JSONDecodeError as err:
        raise BadRecord(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from err


def json_rows(path: Path, policy: SkipPolicy):
    """(where, row) for a JSON list, a JSON object of records keyed by id, or JSONL (one object per line).

    POPE's `.json` files are JSONL, so the layout is told from the content, not the suffix.
    """
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None  # not one JSON document: read it line by line, so a bad line is named (or skipped) alone
    if isinstance(data, list):
        for k, row in enumerate(data):
            yield f"{path}[{k}]", row
        return
    if isinstance(data, dict):
        if all(isinstance(v, dict) for v in data.values()):  # SugarCrepe: {"0": {...}, "1": {...}}
            for key, row in data.items():
                yield f"{path}[{key!r}]", {"_key": key, **row}
            return
        yield f"{path}:1", data  # a single-line JSONL file
        return
    for n, line in decode_lines(path, policy):
        if not line.strip():
            continue
        try:
            yield f"{path}:{n}", json.loads(line)
        except json.JSONDecodeError as err:
            policy.handle(BadRecord(f"{path}:{n}: invalid JSON ({err.msg})"))


def require(row, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(row, dict):
        raise BadRecord(f"{where}: record is not a JSON object")
    missing = [k for k in keys if k not in row]
    if missing:
        raise BadRecord(f"{where}: missing field(s) {', '.join(missing)}; the record has {', '.join(row) or 'none'}")


class BenchmarkDataset(_LazyImageDataset):
    """Records validated up front, images decoded on access under `root`.

    The last few decoded images are kept and handed out again, so the questions of one image share one PIL object
    (decoded once); items are for reading: copy an image before changing it in place.
    """

    _KEEP_DECODED = 8

    def __init__(self, images, skip_bad: bool, source_files: list[Path]):
        super().__init__(skip_bad)
        self.root = image_folder(images) if images is not None else None
        self.source_files = list(source_files)
        self._decoded: OrderedDict = OrderedDict()
        self._resolved: dict[str, Path] = {}

    def add(self, make, *args) -> None:
        """Append make(*args) as a record, or hand its BadRecord to the skip policy."""
        try:
            self.records.append(make(*args))
        except BadRecord as err:
            self._policy.handle(err)

    def image_path(self, rel: str, where: str) -> Path:
        """root/rel, refused if it leaves the root or is missing (checked once per distinct path)."""
        if self.root is None:
            raise BadRecord(f"{where}: the record names image {rel!r} but no image folder was given (images=DIR)")
        if rel not in self._resolved:
            self._resolved[rel] = resolve_under(self.root, rel, where)
        return self._resolved[rel]

    def decoded(self, key, source, where: str):
        """The decoded image for `key` (a path, or any key of in-file bytes), shared with the last few requests."""
        if key in self._decoded:
            self._decoded.move_to_end(key)
            return self._decoded[key]
        image = decode_image(source, where)
        self._decoded[key] = image
        if len(self._decoded) > self._KEEP_DECODED:
            self._decoded.popitem(last=False)
        return image

    def _load(self, rec: dict) -> dict:
        """The record's public fields plus its decoded image (records keep `path` and `where` for themselves)."""
        item = {k: v for k, v in rec.items() if k not in ("path", "where")}
        item["image"] = self.decoded(rec["path"], rec["path"], rec["where"])
        return item
