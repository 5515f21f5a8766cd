"""ARO (Yuksekgonul et al. 2022): Visual Genome Relation and Attribution, from the files its repository ships.

`visual_genome_relation.json` / `visual_genome_attribution.json`: a JSON list of
    {"image_id", "image_path": "2315375.jpg", "bbox_x", "bbox_y", "bbox_w", "bbox_h",
     "true_caption": "the man is holding the umbrella", "false_caption": "the umbrella is holding the man",
     "relation_name": "is holding"}            (Relation; Attribution has "attributes": ["white", "wooden"])
Images are `image_path` under `images`, cropped to the box as ARO does (`crop=False` keeps the whole image).

Items in the compositional suite's format: {"id", "image", "positive": true_caption, "negatives": [{"type",
"text": false_caption}]}, the type being the relation (Relation) or "attr1_attr2" (Attribution); ARO's headline is the
macro-average over types. ARO's Attribution table leaves out attribute pairs with fewer than 25 cases, so this
dataset's `min_type_count` is 25 for Attribution (the suite's macro-average follows it) and none for Relation.
"""

from __future__ import annotations

from pathlib import Path

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, existing_file, json_rows, require

_BOX = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")


class AroVisualGenome(BenchmarkDataset):
    """VG-Relation or VG-Attribution; `task` ("relation" | "attribution") defaults to what the file name says."""

    def __init__(self, path, images, task: str | None = None, crop: bool = True, skip_bad: bool = False):
        p = existing_file(path, "ARO file")
        super().__init__(images, skip_bad, [p])
        if task is None:
            task = next((t for t in ("relation", "attribution") if t in Path(p).stem.lower()), None)
        if task not in ("relation", "attribution"):
            raise ValueError(f"ARO task must be 'relation' or 'attribution' (give task=...), got {task!r}")
        self.task, self.crop, self.split = task, crop, f"vg-{task}"
        self.min_type_count = 25 if task == "attribution" else None
        for where, row in json_rows(p, self._policy):
            self.add(self._record, row, where)

    def _kind(self, row, where: str) -> str:
        if self.task == "relation":
            require(row, ("relation_name",), where)
            return check_text(row["relation_name"], where, "relation_name")
        require(row, ("attributes",), where)
        attrs = row["attributes"]
        if not isinstance(attrs, list) or len(attrs) != 2:
            raise BadRecord(f"{where}: 'attributes' must be the two swapped attributes, got {attrs!r}")
        return f"{attrs[0]}_{attrs[1]}"

    def _record(self, row, where: str) -> dict:
        require(row, ("image_path", "true_caption", "false_caption", *(_BOX if self.crop else ())), where)
        box = None
        if self.crop:
            try:
                x, y, w, h = (float(row[k]) for k in _BOX)
            except (TypeError, ValueError):
                raise BadRecord(f"{where}: bbox_x/y/w/h must be numbers") from None
            if w <= 0 or h <= 0:
                raise BadRecord(f"{where}: the box has no area (w={w}, h={h})")
            box = (x, y, x + w, y + h)
        return {
            "id": f"{row.get('image_id', 'vg')}-{len(self.records)}",  # an image has several cases: number them
            "path": self.image_path(row["image_path"], where),
            "box": box,
            "positive": check_text(row["true_caption"], where, "true_caption"),
            "negatives": [{"type": self._kind(row, where), "text": check_text(row["false_caption"], where)}],
            "where": where,
        }

    def _load(self, rec: dict) -> dict:
        image = self.decoded(rec["path"], rec["path"], rec["where"])
        if rec["box"] is not None:
            image = image.crop(rec["box"])
        return {"id": rec["id"], "image": image, "positive": rec["positive"], "negatives": rec["negatives"]}

    def texts(self):
        for r in self.records:
            yield r["positive"]
            yield r["negatives"][0]["text"]
