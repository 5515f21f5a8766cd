"""Fashion-MNIST from its IDX files (Debian's `dataset-fashion-mnist`), with captions for contrastive training.

Real images, ten classes, and language built from what a person sees: the class name through prompt templates, or
descriptions whose attribute words (sleeves, sole, strap, laces, heel, handle, collar ...) are shared across classes.
Shared attributes are what lets a contrastive map transfer to classes held out of training (zero-shot on unseen
classes), which bare class names cannot do. A seen/unseen split is a `classes=` / `exclude=` choice.

`task="knowledge"` turns the images into yes/no questions whose answers need the item's identity plus everyday
knowledge ("Is this worn on the feet?", "Would this keep you warm in winter?"): the per-class answer table is data,
`fashion_knowledge.json`, written before any model was asked; a class for which a question is ambiguous has no
answer there and is never asked it. Items are VQA items (`question`, `answer`, `qtype` = the question's kind,
`choices` = ["yes", "no"]), balanced between yes and no within every kind.
"""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")

CLASSNAMES = [
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
]

TEMPLATES = [
    "a photo of a {}.",
    "a black and white photo of a {}.",
    "a low resolution photo of a {}.",
    "a product photo of a {}.",
    "a grayscale picture of the {}.",
]

# What the garment looks like, in words shared across classes; several per class so text is not one fixed string.
DESCRIPTIONS = {
    "t-shirt": [
        "a top with short sleeves and no collar",
        "a light garment for the upper body with short sleeves",
        "a short sleeved top worn on the upper body",
    ],
    "trouser": [
        "long trousers with two separate legs",
        "a garment for the legs with two long legs",
        "a pair of long pants covering both legs",
    ],
    "pullover": [
        "a thick knitted top with long sleeves and no buttons",
        "a warm garment for the upper body with long sleeves, knitted",
        "a knitted sweater with long sleeves",
    ],
    "dress": [
        "a one piece garment that hangs from the shoulders down over the legs",
        "a long garment for the whole body without separate legs",
        "a dress covering the upper body and the legs in one piece",
    ],
    "coat": [
        "a long outer garment with long sleeves, buttons and a collar",
        "a heavy jacket for the upper body with long sleeves and buttons down the front",
        "a thick coat with long sleeves and a zip or buttons",
    ],
    "sandal": [
        "an open shoe with thin straps and a flat sole",
        "footwear made of straps on a thin sole, open at the toes",
        "a summer shoe with straps and an open top",
    ],
    "shirt": [
        "a top with long sleeves, a collar and buttons",
        "a light garment for the upper body with a collar and buttons down the front",
        "a buttoned shirt with a collar and sleeves",
    ],
    "sneaker": [
        "a low sports shoe with laces and a thick rubber sole",
        "closed footwear with laces and a flat thick sole",
        "a trainer shoe with laces, low at the ankle",
    ],
    "bag": [
        "a bag with a handle or a strap for carrying things",
        "a handbag with a handle on top",
        "a rectangular bag with a strap or handles",
    ],
    "ankle boot": [
        "a closed shoe that covers the ankle, with a heel and a thick sole",
        "a short boot reaching above the ankle with a heel",
        "footwear covering the foot and ankle with a thick sole and a heel",
    ],
}

KNOWLEDGE_FILE = Path(__file__).with_name("fashion_knowledge.json")


def knowledge_table() -> dict:
    """{"questions": {kind: question}, "answers": {class: {kind: "yes" | "no" | None}}} (fashion_knowledge.json)."""
    table = json.loads(KNOWLEDGE_FILE.read_text())
    unknown = set(table["answers"]) - set(CLASSNAMES)
    if unknown:
        raise ValueError(f"{KNOWLEDGE_FILE}: unknown classes {sorted(unknown)}")
    return table


_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class FashionMNISTMissing(FileNotFoundError):
    pass


def _open(path: Path):
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.exists():
            return gzip.open(candidate, "rb") if candidate.suffix == ".gz" else open(candidate, "rb")
    raise FashionMNISTMissing(
        f"Fashion-MNIST file {path.name}[.gz] not found in {path.parent}. On Debian/Ubuntu: "
        "`sudo apt-get install dataset-fashion-mnist` (installs to /usr/share/datasets/fashion-mnist), or download the "
        "four IDX files and pass `root=DIR` (recipe: `data: {name: fashion-mnist, root: DIR}`)."
    )


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): big-endian header magic 0x0000_08_nd, dims, then uint8 data."""
    with _open(path) as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file ({data.size} values, header says {int(np.prod(dims))})")
    return data.reshape(dims)


def resolve_classes(names_or_ids) -> list[int]:
    out = []
    for c in names_or_ids:
        if isinstance(c, int) or (isinstance(c, str) and c.isdigit()):
            idx = int(c)
            if not 0 <= idx < len(CLASSNAMES):
                raise ValueError(f"class index {idx} out of range 0..{len(CLASSNAMES) - 1}")
        else:
            if c not in CLASSNAMES:
                raise ValueError(f"unknown Fashion-MNIST class {c!r}; classes are {CLASSNAMES}")
            idx = CLASSNAMES.index(c)
        out.append(idx)
    return out


class FashionMNIST(Dataset):
    """Items: {"id", "image" (PIL RGB), "text", "label", "meta": {"class"}}.

    caption: "name" (a template around the class name), "description" (one of the class's descriptions) or "mixed".
    classes / exclude: keep only / drop these classes (names or indices). `label` indexes `classnames` (the kept
    classes in their original order), so a zero-shot run over a subset scores against just those classes;
    `meta["class_id"]` keeps the original 0..9 id.
    task: "caption" (the items above) or "knowledge": yes/no questions from fashion_knowledge.json, each item
    {"id", "image", "question", "answer", "qtype", "choices", "label", "meta"}; `n` is then the number of questions,
    split evenly over the question kinds (`kinds`, default all) and within each between yes and no.
    """

    def __init__(
        self,
        split: str = "train",
        root: str | None = None,
        caption: str = "mixed",
        classes: list | None = None,
        exclude: list | None = None,
        n: int | None = None,
        seed: int = 0,
        task: str = "caption",
        kinds: list | None = None,
    ):
        if task not in ("caption", "knowledge"):
            raise ValueError(f"task must be caption or knowledge, got {task!r}")
        if split not in _FILES:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if caption not in ("name", "description", "mixed"):
            raise ValueError(f"caption must be name | description | mixed, got {caption!r}")
        root_path = Path(root) if root else DEFAULT_ROOT
        images = read_idx(root_path / _FILES[split][0])
        labels = read_idx(root_path / _FILES[split][1]).astype(np.int64)
        if len(images) != len(labels):
            raise ValueError(f"{root_path}: {len(images)} images but {len(labels)} labels in split {split}")
        keep = set(resolve_classes(classes) if classes is not None else range(len(CLASSNAMES)))
        keep -= set(resolve_classes(exclude or []))
        if not keep:
            raise ValueError("no classes left after classes/exclude")
        index = np.flatnonzero(np.isin(labels, sorted(keep)))
        rng = np.random.default_rng(seed)
        self.task = task
        self.questions: list[tuple[str, str]] = []  # knowledge: (kind, answer) of item i, whose image is index[i]
        if task == "knowledge":
            index, self.questions = _knowledge_items(labels, index, n, kinds, rng)
        elif n is not None and n < len(index):
            index = np.sort(rng.choice(index, size=n, replace=False))
        self.split, self.caption, self.seed = split, caption, seed
        self.images, self.labels, self.index = images, labels, index
        self.class_ids = sorted(keep)
        self.classnames = [CLASSNAMES[i] for i in self.class_ids]
        self.templates = list(TEMPLATES)
        # The prompts that describe each class, for zero-shot: the name through every template, then the
        # attribute descriptions (what transfers to classes never seen in training).
        self.descriptions = {c: [t.format(c) for t in TEMPLATES] + DESCRIPTIONS[c] for c in self.classnames}
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.index)

    def _caption(self, i: int, label: int) -> str:
        # The caption is a deterministic function of (seed, item): resume and multi-process runs see the same text.
        rng = np.random.default_rng([self.seed, int(self.index[i])])
        name = CLASSNAMES[label]
        mode = self.caption if self.caption != "mixed" else ("name", "description")[int(rng.integers(2))]
        if mode == "name":
            return TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(name)
        descs = DESCRIPTIONS[name]
        return descs[int(rng.integers(len(descs)))]

    def __getitem__(self, i: int) -> dict:
        j = int(self.index[i])
        class_id = int(self.labels[j])
        image = Image.fromarray(self.images[j]).convert("RGB")
        if self.task == "knowledge":
            kind, answer = self.questions[i]
            return {
                "id": f"fmnist-{self.split}-{j}",
                "qid": f"fmnist-{self.split}-{j}-{kind}",
                "image": image,
                "question": knowledge_table()["questions"][kind],
                "answer": answer,
                "qtype": kind,
                "choices": ["yes", "no"],
                "label": self.class_ids.index(class_id),
                "meta": {"class": CLASSNAMES[class_id], "class_id": class_id},
            }
        return {
            "id": f"fmnist-{self.split}-{j}",
            "image": image,
            "text": self._caption(i, class_id),
            "label": self.class_ids.index(class_id),
            "meta": {"class": CLASSNAMES[class_id], "class_id": class_id},
        }

    def texts(self):
        if self.task == "knowledge":
            yield from knowledge_table()["questions"].values()
            yield from ("yes", "no")
            return
        for name in self.classnames:
            yield from (t.format(name) for t in TEMPLATES)
            yield from DESCRIPTIONS[name]


def _knowledge_items(labels: np.ndarray, index: np.ndarray, n: int | None, kinds, rng):
    """(image index per item, (kind, answer) per item): per kind, as many yes as no questions, each on a distinct
    image of a class whose answer the table gives; n questions in all (default: the most the split allows)."""
    table = knowledge_table()
    kinds = list(table["questions"]) if kinds is None else list(kinds)
    bad = [k for k in kinds if k not in table["questions"]]
    if bad:
        raise ValueError(f"unknown knowledge kinds {bad}; choose from {list(table['questions'])}")
    pools = {}
    for kind in kinds:
        for answer in ("yes", "no"):
            ids = [CLASSNAMES.index(c) for c, a in table["answers"].items() if a.get(kind) == answer]
            pools[kind, answer] = index[np.isin(labels[index], ids)]
    most = min(len(p) for p in pools.values())
    if most == 0:
        raise ValueError(f"the kept classes leave a knowledge kind without yes or no questions ({kinds})")
    per_cell = most if n is None else n // (2 * len(kinds))
    if per_cell < 1 or per_cell > most:
        raise ValueError(f"knowledge: n={n} gives {per_cell} questions per kind and answer; choose 1..{most} of them")
    images, questions = [], []
    for kind in kinds:
        for answer in ("yes", "no"):
            pick = np.sort(rng.choice(pools[kind, answer], size=per_cell, replace=False))
            images += [int(j) for j in pick]
            questions += [(kind, answer)] * per_cell
    return np.asarray(images, dtype=np.int64), questions
