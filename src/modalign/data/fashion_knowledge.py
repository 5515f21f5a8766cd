"""Knowledge questions about Fashion-MNIST images ("Is this worn on the feet?"), answered from a per-class table.

The picture shows which garment it is; the question asks what a person knows about that kind of garment. A model
answers it by recognising the class and knowing the attribute, which is what an LM can supply once the class is in
words (a tagger's label) or in its input space (a connector's tokens). Every question is asked only of the classes
whose answer is unambiguous (a dress may or may not have sleeves, so the sleeve questions skip it).

Tasks: `vqa` items `{"id", "qid", "image", "question", "answer", "qtype"}` (the vqa suite's format) and `instruct`
items `{"id", "image", "conversations"}` (LLaVA format, several questions about one image) for training connectors.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from .fashion_mnist import CLASSNAMES, FashionMNIST

# What each class is: the body part it goes on, its kind of item, its sleeves ("none", "short", "long", or None when a
# class varies), whether it is carried rather than worn.
ATTRIBUTES = {
    "t-shirt": {"body": "upper body", "kind": "clothing", "sleeves": "short", "carried": False},
    "trouser": {"body": "legs", "kind": "clothing", "sleeves": "none", "carried": False},
    "pullover": {"body": "upper body", "kind": "clothing", "sleeves": "long", "carried": False},
    "dress": {"body": "whole body", "kind": "clothing", "sleeves": None, "carried": False},
    "coat": {"body": "upper body", "kind": "clothing", "sleeves": "long", "carried": False},
    "sandal": {"body": "feet", "kind": "footwear", "sleeves": "none", "carried": False},
    "shirt": {"body": "upper body", "kind": "clothing", "sleeves": "long", "carried": False},
    "sneaker": {"body": "feet", "kind": "footwear", "sleeves": "none", "carried": False},
    "bag": {"body": None, "kind": "bag", "sleeves": "none", "carried": True},
    "ankle boot": {"body": "feet", "kind": "footwear", "sleeves": "none", "carried": False},
}


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def questions_for(classname: str) -> list[dict]:
    """Every question with an unambiguous answer for one class: [{"question", "answer", "qtype"}]."""
    a = ATTRIBUTES[classname]
    out = [
        {"question": "What is this item?", "answer": classname, "qtype": "name"},
        {"question": "Is this worn on the feet?", "answer": _yes(a["body"] == "feet"), "qtype": "feet"},
        {"question": "Is this clothing, footwear or a bag?", "answer": a["kind"], "qtype": "kind"},
        {"question": "Is this carried rather than worn?", "answer": _yes(a["carried"]), "qtype": "carried"},
    ]
    if a["sleeves"] is not None:
        out.append({"question": "Does it have sleeves?", "answer": _yes(a["sleeves"] != "none"), "qtype": "sleeves"})
    if a["sleeves"] in ("short", "long"):
        out.append({"question": "Are the sleeves long?", "answer": _yes(a["sleeves"] == "long"), "qtype": "long"})
    if a["body"] is not None:
        out.append({"question": "What part of the body is this worn on?", "answer": a["body"], "qtype": "body"})
    return out


class FashionKnowledge(Dataset):
    """Fashion-MNIST images with knowledge questions (see the module docstring).

    task "vqa": `n` images (drawn as FashionMNIST's `n`), one question each, drawn per image from its class's
    questions so every type appears; "instruct": one conversation per image with `max_turns` of its questions in a
    random order, each followed by the short-answer instruction `suffix`.
    """

    def __init__(
        self,
        task: str = "vqa",
        split: str = "test",
        n: int | None = 200,
        seed: int = 0,
        root: str | None = None,
        max_turns: int = 3,
        suffix: str = "Answer with a single word or phrase.",
    ):
        if task not in ("vqa", "instruct"):
            raise ValueError(f"fashion-mnist-qa task must be 'vqa' or 'instruct', got {task!r}")
        self.task, self.split, self.seed, self.max_turns, self.suffix = task, split, seed, max_turns, suffix
        self.images = FashionMNIST(split=split, root=root, n=n, seed=seed, caption="name")
        self.classnames = list(CLASSNAMES)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = self.images[i]
        name = item["meta"]["class"]
        qs = questions_for(name)
        # a deterministic draw per (seed, image): workers and resumed runs see the same questions
        rng = np.random.default_rng([self.seed, i, 7])
        if self.task == "vqa":
            q = qs[int(rng.integers(len(qs)))]
            return {"id": item["id"], "qid": f"{item['id']}-{q['qtype']}", "image": item["image"], **q}
        order = rng.permutation(len(qs))[: self.max_turns]
        conv = []
        for k, j in enumerate(order):
            q = qs[int(j)]
            prefix = "<image>\n" if k == 0 else ""
            conv.append({"from": "human", "value": f"{prefix}{q['question']} {self.suffix}".strip()})
            conv.append({"from": "gpt", "value": q["answer"]})
        return {"id": item["id"], "image": item["image"], "conversations": conv, "meta": {"class": name}}

    def texts(self):
        for name in CLASSNAMES:
            for q in questions_for(name):
                yield q["question"]
                yield q["answer"]
