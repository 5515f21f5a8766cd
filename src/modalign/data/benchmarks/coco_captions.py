"""COCO captions from the official annotations JSON (`captions_val2014.json`, `captions_val2017.json`).

    {"images": [{"id": 391895, "file_name": "COCO_val2014_000000391895.jpg", ...}],
     "annotations": [{"image_id": 391895, "id": 37, "caption": "A man riding a bike."}, ...]}
Images are `file_name` under `images`. One item per caption, grouped by image (the image's order in `images`):
{"id": image id, "image", "text", "caption_id"}; the caption suite takes items sharing an id as one image's
references, and a caption-trained model can use the same dataset as training data.
"""

from __future__ import annotations

import re

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, existing_file, load_json, require


class CocoCaptions(BenchmarkDataset):
    """Every caption of every image listed in the annotations file."""

    def __init__(self, annotations, images, skip_bad: bool = False):
        path = existing_file(annotations, "COCO captions file")
        super().__init__(images, skip_bad, [path])
        doc = load_json(path)
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or "annotations" not in doc:
            raise BadRecord(f"{path}: expected the COCO captions layout {{'images': [...], 'annotations': [...]}}")
        files = {}
        for k, im in enumerate(doc["images"]):
            where = f"{path}[images][{k}]"
            try:
                require(im, ("id", "file_name"), where)
                files[im["id"]] = (im["file_name"], where)
            except BadRecord as err:
                self._policy.handle(err)
        by_image: dict = {i: [] for i in files}
        for k, ann in enumerate(doc["annotations"]):
            where = f"{path}[annotations][{k}]"
            try:
                require(ann, ("image_id", "caption"), where)
                if ann["image_id"] not in files:
                    raise BadRecord(f"{where}: image_id {ann['image_id']} is not in the file's images")
                by_image[ann["image_id"]].append((ann, where))
            except BadRecord as err:
                self._policy.handle(err)
        found = re.search(r"(train|val|test)\d{4}", path.name)  # captions_val2014.json -> val2014
        self.split = found.group(0) if found else None
        for image_id, anns in by_image.items():
            for ann, where in anns:
                self.add(self._record, image_id, files[image_id][0], ann, where)

    def _record(self, image_id, file_name: str, ann: dict, where: str) -> dict:
        return {
            "id": str(image_id),
            "caption_id": str(ann.get("id", where)),
            "path": self.image_path(file_name, where),
            "text": check_text(ann["caption"], where, "caption").strip(),
            "where": where,
        }

    def texts(self):
        return (r["text"] for r in self.records)
