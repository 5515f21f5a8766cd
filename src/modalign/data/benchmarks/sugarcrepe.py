"""SugarCrepe (Hsieh et al. 2023): one JSON file per hard-negative type, over COCO val2017 images.

Files `replace_obj.json`, `replace_att.json`, `replace_rel.json`, `swap_obj.json`, `swap_att.json`, `add_obj.json`,
`add_att.json` (an early release spells obj as `ent`), each {"0": {"filename": "000000544519.jpg",
"caption": "...", "negative_caption": "..."}, ...}. `path` is the folder holding them, one file, or a list; the type is
the file's name (replace_obj -> "replace-obj"). `types` keeps some of them ("replace-obj,swap-att" or a list).

Items, in the compositional suite's format: {"id": "<type>/<key>", "image", "positive": caption,
"negatives": [{"type", "text": negative_caption}]}; the suite reports accuracy per type (chance 50%).
"""

from __future__ import annotations

from pathlib import Path

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, json_rows, require

TYPES = ("replace-obj", "replace-att", "replace-rel", "swap-obj", "swap-att", "add-obj", "add-att")


def type_of(path: Path) -> str | None:
    name = path.stem.lower().replace("_", "-").replace("-ent", "-obj")
    return name if name in TYPES else None


def type_files(path) -> list[tuple[str, Path]]:
    paths = path if isinstance(path, (list, tuple)) else [path]
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [(t, f) for f in sorted(p.glob("*.json")) if (t := type_of(f))]
        elif p.is_file():
            t = type_of(p)
            if t is None:
                names = ", ".join(t.replace("-", "_") + ".json" for t in TYPES)
                raise ValueError(f"{p}: name the file after its SugarCrepe type ({names})")
            out.append((t, p))
        else:
            raise FileNotFoundError(f"SugarCrepe file or folder {p} does not exist")
    if not out:
        raise FileNotFoundError(f"no SugarCrepe type files (replace_obj.json, ...) in {path}")
    return out


class SugarCrepe(BenchmarkDataset):
    """Positive caption vs one hard negative per image, for each type file found."""

    def __init__(self, path, images, types=None, skip_bad: bool = False):
        files = type_files(path)
        if types is not None:
            wanted = set(types.split(",") if isinstance(types, str) else types)
            bad = sorted(wanted - set(TYPES))
            if bad:
                raise ValueError(f"unknown SugarCrepe type(s) {bad}; choose from {', '.join(TYPES)}")
            files = [(t, f) for t, f in files if t in wanted]
        super().__init__(images, skip_bad, [f for _, f in files])
        self.types = sorted({t for t, _ in files})
        for kind, f in files:
            for where, row in json_rows(f, self._policy):
                self.add(self._record, kind, row, where)

    def _record(self, kind: str, row, where: str) -> dict:
        require(row, ("filename", "caption", "negative_caption"), where)
        pos = check_text(row["caption"], where, "caption").strip()
        neg = check_text(row["negative_caption"], where, "negative_caption").strip()
        if pos == neg:
            raise BadRecord(f"{where}: caption and negative_caption are the same text")
        return {
            "id": f"{kind}/{row.get('_key', where)}",
            "path": self.image_path(row["filename"], where),
            "positive": pos,
            "negatives": [{"type": kind, "text": neg}],
            "where": where,
        }

    def texts(self):
        for r in self.records:
            yield r["positive"]
            yield r["negatives"][0]["text"]
