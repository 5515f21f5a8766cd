"""CHAIR (Rohrbach et al. 2018) on COCO: the objects of each image from the instance annotations.

instances (`instances_val2014.json`, or any COCO detection file):
    {"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "category_id", ...}],
     "categories": [{"id", "name", "supercategory"}]}
The vocabulary is the `synonyms` file (JSON or CHAIR's synonyms.txt, see synonyms.py), each COCO category mapped to
the object naming it; without one, the category names themselves, with no synonyms. The chair suite reads it from
this dataset's `vocabulary`. `n` keeps a fixed random sample of n images (`seed`), as CHAIR's usual 500 val images.

Items: {"id": image id, "image", "objects": the canonical objects annotated in it (sorted)}. CHAIR's paper also
counts as present the objects its synonyms find in the image's reference captions; this reader does not (the
truth is the instance annotations alone).
"""

from __future__ import annotations

import numpy as np

from ..records import BadRecord
from .base import BenchmarkDataset, existing_file, load_json, require
from .synonyms import canonical_name, read_synonyms


class CocoChair(BenchmarkDataset):
    """One item per image of the instances file (or of its n-image sample)."""

    def __init__(self, instances, images, synonyms=None, n: int | None = None, seed: int = 0, skip_bad: bool = False):
        path = existing_file(instances, "COCO instances file")
        files = [path] + ([existing_file(synonyms, "synonym file")] if synonyms else [])
        super().__init__(images, skip_bad, files)
        doc = load_json(path)
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "categories")):
            raise BadRecord(f"{path}: expected the COCO instances layout with 'images', 'annotations', 'categories'")
        names = {c["id"]: c["name"] for c in doc["categories"] if isinstance(c, dict) and "id" in c and "name" in c}
        self.vocabulary = read_synonyms(synonyms) if synonyms else {name.lower(): [] for name in names.values()}
        canon = {cid: canonical_name(name, self.vocabulary) for cid, name in names.items()}
        unknown = sorted(names[c] for c, v in canon.items() if v is None)
        if unknown:
            raise BadRecord(f"{files[-1]}: the COCO categories {unknown} are neither objects nor synonyms of this list")
        objects: dict = {}
        for k, ann in enumerate(doc.get("annotations", [])):
            where = f"{path}[annotations][{k}]"
            try:
                require(ann, ("image_id", "category_id"), where)
                if ann["category_id"] not in canon:
                    raise BadRecord(f"{where}: category_id {ann['category_id']} is not in the file's categories")
                objects.setdefault(ann["image_id"], set()).add(canon[ann["category_id"]])
            except BadRecord as err:
                self._policy.handle(err)
        listed = list(enumerate(doc["images"]))
        if n is not None:
            if not 0 < n <= len(listed):
                raise ValueError(f"n={n} must be between 1 and the file's {len(listed)} images")
            keep = np.sort(np.random.default_rng(seed).choice(len(listed), size=n, replace=False))
            listed = [listed[int(i)] for i in keep]
        self.n, self.seed = n, seed
        for k, im in listed:
            self.add(self._record, im, objects, f"{path}[images][{k}]")

    def _record(self, im, objects: dict, where: str) -> dict:
        require(im, ("id", "file_name"), where)
        return {
            "id": str(im["id"]),
            "path": self.image_path(im["file_name"], where),
            "objects": sorted(objects.get(im["id"], ())),
            "where": where,
        }
