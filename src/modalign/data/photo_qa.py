"""Questions about real photos and a document page, with answers written down in `photo_qa.jsonl` beside this file.

The images are the ones scikit-image (`skimage.data`: chelsea, coffee, rocket, astronaut, camera, page) and
scikit-learn (`load_sample_images`: china, flower) ship, so the set runs anywhere both are installed. Answers are
single words or phrases that have one right form (an animal's common name, a title as printed, yes / no), so VQA
exact-match scoring is fair. Some questions need reading (the title of page.png), some naming (the animal in chelsea),
some only seeing; `qtype` says which. Items follow the vqa suite's format. Another question file with the same fields
works too: `path=` a JSONL whose `image` is `skimage:NAME`, `sklearn:NAME` or a file path (relative to the JSONL).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

DEFAULT_PATH = Path(__file__).with_name("photo_qa.jsonl")


@lru_cache(maxsize=32)
def load_photo(source: str, base: str = ".") -> Image.Image:
    """An RGB image named `skimage:NAME`, `sklearn:NAME` (china, flower) or a file path relative to `base`."""
    kind, _, name = source.partition(":")
    if kind == "skimage" and name:
        import skimage.data

        if not hasattr(skimage.data, name):
            raise ValueError(f"skimage.data has no image {name!r}")
        return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    if kind == "sklearn" and name:
        from sklearn.datasets import load_sample_images

        sample = load_sample_images()
        names = [Path(f).stem for f in sample.filenames]
        if name not in names:
            raise ValueError(f"scikit-learn's sample images are {names}, not {name!r}")
        return Image.fromarray(sample.images[names.index(name)]).convert("RGB")
    path = Path(base) / source
    if not path.is_file():
        raise FileNotFoundError(f"image {source!r}: not skimage:NAME, sklearn:NAME or an existing file under {base}")
    return Image.open(path).convert("RGB")


class PhotoQA(Dataset):
    """Items `{"id", "qid", "image", "question", "answer", "qtype"}`; `id` names the image (shared by its questions)."""

    def __init__(self, path: str | None = None, qtypes: list[str] | None = None, n: int | None = None):
        self.path = Path(path) if path else DEFAULT_PATH
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        for k, r in enumerate(rows):
            missing = {"image", "question", "answer"} - set(r)
            if missing:
                raise ValueError(f"{self.path} line {k + 1}: missing {sorted(missing)}")
        if qtypes is not None:
            rows = [r for r in rows if r.get("qtype") in set(qtypes)]
        self.rows = rows[:n] if n is not None else rows
        self.split = self.path.stem

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        r = self.rows[i]
        image = load_photo(r["image"], str(self.path.parent)).copy()
        return {
            "id": r["image"],
            "qid": r.get("qid", f"{self.split}-{i}"),
            "image": image,
            "question": r["question"],
            "answer": r["answer"],
            "qtype": r.get("qtype", "all"),
        }
