"""POPE (Li et al. 2023) question files over an image folder, as the POPE repository ships them.

One file per sampler, `coco_pope_random.json`, `coco_pope_popular.json`, `coco_pope_adversarial.json` (JSON lines
despite the suffix):
    {"question_id": 1, "image": "COCO_val2014_000000016631.jpg", "text": "Is there a person in the image?",
     "label": "yes"}
The sampler of a file is the `sampler=` parameter, else the one its name contains, else a record's `category`
field (LLaVA's merged llava_pope_test.jsonl), else "all". `questions` is one file, a list of files, or a folder
(every *.json / *.jsonl in it).

Items: {"id": image file, "qid", "image", "question", "answer": "yes" | "no", "sampler", "object"}.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, json_rows, require
from .vqav2 import VQA_PROMPT

SAMPLERS = ("random", "popular", "adversarial")
_OBJECT = re.compile(r"^is there (?:an? )?(.+?) in the (?:image|picture|photo)\?*$", re.IGNORECASE)


def question_files(questions) -> list[Path]:
    """The question files: one path, a list of paths, or every *.json / *.jsonl of a folder (sorted)."""
    paths = questions if isinstance(questions, (list, tuple)) else [questions]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(x for x in p.iterdir() if x.suffix.lower() in (".json", ".jsonl"))
            if not found:
                raise FileNotFoundError(f"POPE question folder {p} holds no .json / .jsonl files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"POPE question file {p} does not exist")
    return out


def sampler_of(path: Path, given: str | None) -> str | None:
    if given is not None:
        return given
    found = [s for s in SAMPLERS if s in path.stem.lower()]
    return found[0] if len(found) == 1 else None


class PopeQuestions(BenchmarkDataset):
    """POPE yes/no probes; the pope suite reports each sampler and all together."""

    prompt = VQA_PROMPT  # LLaVA-1.5 asks POPE's question with its short-answer instruction

    def __init__(self, questions, images, sampler: str | None = None, skip_bad: bool = False):
        files = question_files(questions)
        super().__init__(images, skip_bad, files)
        for path in files:
            file_sampler = sampler_of(path, sampler)
            for where, row in json_rows(path, self._policy):
                self.add(self._record, row, file_sampler, where)
        self.samplers = sorted({r["sampler"] for r in self.records})
        self.split = "+".join(self.samplers)

    def _record(self, row, sampler: str | None, where: str) -> dict:
        require(row, ("image", "text"), where)
        label = row.get("label", row.get("answer"))
        if not isinstance(label, str) or label.strip().lower() not in ("yes", "no"):
            raise BadRecord(f"{where}: label must be 'yes' or 'no', got {label!r}")
        question = check_text(row["text"], where, "text").strip()
        found = _OBJECT.match(question)
        return {
            "id": str(row["image"]),
            "qid": f"{sampler or row.get('category') or 'all'}-{row.get('question_id', where)}",
            "path": self.image_path(row["image"], where),
            "question": question,
            "answer": label.strip().lower(),
            "sampler": sampler or str(row.get("category") or "all"),
            "object": found.group(1) if found else None,
            "where": where,
        }

    def texts(self):
        for r in self.records:
            yield r["question"]
            yield r["answer"]
