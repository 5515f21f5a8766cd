"""Winoground (Thrush et al. 2022) from its release: `examples.jsonl` and an `images/` folder.

    {"id": 0, "caption_0": "an old person kisses a young person", "caption_1": "a young person kisses an old person",
     "tag": "Noun", "secondary_tag": "", "num_main_preds": 1, "collapsed_tag": "Object",
     "image_0": "ex_0_img_0", "image_1": "ex_0_img_1"}
Images are `<image_x>.png` under `images` (default: the `images` folder next to the file).

Items, in the winoground suite's format: {"id", "images": [I0, I1], "captions": [C0, C1], "tag", "secondary_tag",
"num_main_preds", "collapsed_tag"}; the suite breaks text / image / group scores down by these tags.
"""

from __future__ import annotations

from ..records import check_text
from .base import BenchmarkDataset, existing_file, json_rows, require

TAGS = ("tag", "secondary_tag", "num_main_preds", "collapsed_tag")


class Winoground(BenchmarkDataset):
    """Two images, two captions per example."""

    def __init__(self, path, images=None, skip_bad: bool = False):
        p = existing_file(path, "Winoground examples file")
        super().__init__(images if images is not None else p.parent / "images", skip_bad, [p])
        for where, row in json_rows(p, self._policy):
            self.add(self._record, row, where)

    def _record(self, row, where: str) -> dict:
        require(row, ("id", "caption_0", "caption_1", "image_0", "image_1"), where)
        paths = []
        for k in ("image_0", "image_1"):
            name = str(row[k])
            paths.append(self.image_path(name if name.lower().endswith(".png") else name + ".png", where))
        rec = {
            "id": str(row["id"]),
            "paths": paths,
            "captions": [check_text(row[f"caption_{c}"], where, f"caption_{c}") for c in (0, 1)],
            "where": where,
        }
        rec.update({t: row[t] for t in TAGS if t in row})
        return rec

    def _load(self, rec: dict) -> dict:
        item = {k: v for k, v in rec.items() if k not in ("paths", "where")}
        item["images"] = [self.decoded(p, p, rec["where"]) for p in rec["paths"]]
        return item

    def texts(self):
        for r in self.records:
            yield from r["captions"]
