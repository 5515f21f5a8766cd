"""The bad-record policy shared by every reader: name the record, or skip and count it.

A reader checks what is cheap at construction (paths, text, JSON) and decodes images lazily. Either way a problem
raises `BadRecord` naming the file and line/index, unless the reader was built with `skip_bad=True`: then the record
is skipped, `dataset.skipped` counts it and a warning says what was dropped — never a crash hours into a run.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

from PIL import Image

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp")


class BadRecord(ValueError):
    """One record of a data file is unusable; the message names the file and line/index and what is wrong."""


class SkipPolicy:
    """Raise or count-and-warn for bad records; readers hold one and expose its count as `skipped`."""

    def __init__(self, skip_bad: bool):
        self.skip_bad = skip_bad
        self.skipped = 0
        self.bad: set = set()

    def handle(self, err: BadRecord, key=None) -> None:
        if not self.skip_bad:
            raise err
        if key is None or key not in self.bad:
            self.skipped += 1
            if key is not None:
                self.bad.add(key)
            warnings.warn(f"skipped bad record: {err}", stacklevel=3)


def resolve_under(root: Path, rel: str, where: str, what: str = "image") -> Path:
    """root/rel, refusing paths that escape root (absolute, `..`, or symlinks pointing outside); `what` names the
    kind of file in messages (image, audio, video)."""
    if not isinstance(rel, str) or not rel.strip():
        raise BadRecord(f"{where}: {what} path is missing or not a string ({rel!r})")
    root = root.resolve()
    path = (root / rel).resolve()
    if path != root and root not in path.parents:
        raise BadRecord(f"{where}: {what} path {rel!r} escapes the data root {root}; keep {what} files under the root")
    if not path.is_file():
        raise BadRecord(f"{where}: {what} file {path} does not exist")
    return path


def decode_image(data: bytes | Path, where: str) -> Image.Image:
    """Fully decode (a truncated file fails here, not later in a collate) into 8-bit RGB, refusing images over
    the pixel limit before decoding them (images.py)."""
    from .images import open_image  # images.py needs BadRecord from here

    return open_image(data, where)


def check_text(text, where: str, field: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRecord(f"{where}: {field} is empty or not a string ({text!r})")
    return text


def decode_lines(path: Path, policy: SkipPolicy):
    """(line number, text) per line of a UTF-8 file; undecodable lines are bad records (named by line)."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                policy.handle(BadRecord(f"{path}:{n}: bytes are not UTF-8 ({err.reason} at byte {err.start})"))


def table_rows(path: Path, policy: SkipPolicy):
    """("file:line", row dict) per record of a CSV (header row) or, for any other suffix, a JSONL file; a JSONL line
    that is not a JSON object is a bad record named by its line, blank lines are skipped."""
    if path.suffix.lower() == ".csv":
        lines = list(decode_lines(path, policy))
        reader = csv.DictReader(line for _, line in lines)
        for row in reader:
            n = lines[min(reader.line_num, len(lines)) - 1][0]  # physical line in the file
            yield f"{path}:{n}", row
        return
    for n, line in decode_lines(path, policy):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            policy.handle(BadRecord(f"{path}:{n}: not a JSON object ({err})"))
            continue
        yield f"{path}:{n}", row
