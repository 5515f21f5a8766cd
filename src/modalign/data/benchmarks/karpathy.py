"""Karpathy-split caption files (`dataset_coco.json`, `dataset_flickr30k.json`, `dataset_flickr8k.json`).

    {"dataset": "coco", "images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg",
      "split": "test", "cocoid": 391895, "imgid": 0, "sentences": [{"raw": "A man riding a bike.", "tokens": [...]}]}]}
Images are `filepath/filename` under `images` (`filename` alone when there is no filepath, as for Flickr30k).
`split` keeps the images of one split: "test" (default; 5,000 COCO images), "val", "train", "restval", or several
joined by "+" ("train+restval" is the usual Karpathy train set). One item per sentence, its `raw` text:
{"id": the image's cocoid / imgid, "image", "text"}.
"""

from __future__ import annotations

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, existing_file, load_json, require


class KarpathyCaptions(BenchmarkDataset):
    """The sentences of one Karpathy split, grouped by image."""

    def __init__(self, path, images, split: str = "test", skip_bad: bool = False):
        p = existing_file(path, "Karpathy split file")
        super().__init__(images, skip_bad, [p])
        doc = load_json(p)
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            raise BadRecord(f"{p}: expected the Karpathy layout {{'images': [{{'filename', 'split', 'sentences'}}]}}")
        self.split = split
        wanted = set(split.split("+"))
        for k, im in enumerate(doc["images"]):
            where = f"{p}[images][{k}]"
            if isinstance(im, dict) and im.get("split") not in wanted:
                continue
            try:
                require(im, ("filename", "sentences", "split"), where)
                rel = f"{im['filepath']}/{im['filename']}" if im.get("filepath") else im["filename"]
                path_ = self.image_path(rel, where)
                if not isinstance(im["sentences"], list) or not im["sentences"]:
                    raise BadRecord(f"{where}: 'sentences' must be a non-empty list of {{'raw': str}}")
            except BadRecord as err:
                self._policy.handle(err)
                continue
            image_id = str(im.get("cocoid", im.get("imgid", im["filename"])))
            for s, sent in enumerate(im["sentences"]):
                self.add(self._record, image_id, path_, sent, f"{where}[sentences][{s}]")

    @staticmethod
    def _record(image_id: str, path, sent, where: str) -> dict:
        if not isinstance(sent, dict):
            raise BadRecord(f"{where}: a sentence must be an object with 'raw'")
        return {"id": image_id, "path": path, "text": check_text(sent.get("raw"), where, "raw").strip(), "where": where}

    def texts(self):
        return (r["text"] for r in self.records)
