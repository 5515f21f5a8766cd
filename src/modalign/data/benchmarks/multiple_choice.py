"""Multiple-choice benchmarks: MMBench / MMStar TSV files (as OpenCompass and VLMEvalKit ship them) or JSONL.

TSV (MMBench_DEV_EN.tsv): a header `index, question, hint, A, B, C, D, answer, category, image` (plus l2-category,
split, ... which are kept as they are); `image` is the picture base64-encoded, or - to save space, as VLMEvalKit
writes it - the `index` of another row holding it (any value of at most 64 characters). Options are the
single-letter columns with a value ("" and "nan" mean the question has fewer options). A file without option
columns, as MMStar's own release, may carry them in the question: "...?\nOptions: A: red, B: green, C: blue" is split
into the question and its options.
JSONL: one object per line with `question`, `answer` (a letter), the options as `options` ({"A": ...} or a list) or
as A / B / C / D fields, `image` (a file under `images`) or `image_base64`, optional `id`, `hint`, `category`.

Items: {"id", "image", "question", "hint", "options": {"A": text, ...}, "answer": letter, "category"} and, when the
file already holds MMBench's circular copies (indices >= 1,000,000 sharing `index % 1,000,000`), "group".
"""

from __future__ import annotations

import base64
import binascii
import csv
import re
import string
import sys

from ..records import BadRecord, check_text
from .base import BenchmarkDataset, existing_file, json_rows
from .qa import csv_rows

LETTERS = tuple(string.ascii_uppercase)
CIRCULAR_OFFSET = 1_000_000  # MMBench's circular copies of question i are i + k * 1e6
# LLaVA-1.5's MMBench instruction (hint, question and options above it).
MC_PROMPT = "{question}\n{options}\nAnswer with the option's letter from the given choices directly."


_INLINE = re.compile(r"\s*Options:\s*(?=A[:.])", re.IGNORECASE)
_INLINE_LETTER = re.compile(r"(?:^|,\s*|\n\s*)([A-Z])[:.]\s*")


def inline_options(question: str) -> tuple[str, dict[str, str]]:
    """("question", {"A": ..}) from MMStar's "question\nOptions: A: x, B: y"; ({}) when there is no such list."""
    parts = _INLINE.split(question, maxsplit=1)
    if len(parts) != 2:
        return question, {}
    marks = list(_INLINE_LETTER.finditer(parts[1]))
    if [m.group(1) for m in marks] != list(LETTERS[: len(marks)]):
        return question, {}
    ends = [m.start() for m in marks[1:]] + [len(parts[1])]
    return parts[0].strip(), {m.group(1): parts[1][m.end() : e].strip() for m, e in zip(marks, ends)}


def _absent(value) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", "nan", "none"))


class MultipleChoice(BenchmarkDataset):
    """Questions with lettered options; `images` is needed only when records name image files."""

    prompt = MC_PROMPT

    def __init__(self, path, images=None, skip_bad: bool = False):
        p = existing_file(path, "multiple-choice file")
        super().__init__(images, skip_bad, [p])
        self._pictures: dict[str, str] = {}  # TSV index -> base64 text, for rows that point at another row
        if p.suffix.lower() == ".tsv":
            # base64 pictures are far larger than the csv module's default field limit (128 KiB)
            csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))
            rows = list(csv_rows(p, self._policy, delimiter="\t"))
            for _, row in rows:
                if not _absent(row.get("image")) and len(row["image"]) > 64:
                    self._pictures[str(row.get("index"))] = row["image"]
        else:
            rows = list(json_rows(p, self._policy))
        for where, row in rows:
            self.add(self._record, row, where)
        if any(int(r["index"]) >= CIRCULAR_OFFSET for r in self.records if r["index"].isdigit()):
            for r in self.records:
                r["group"] = str(int(r["index"]) % CIRCULAR_OFFSET) if r["index"].isdigit() else r["index"]
        self.categories = sorted({r["category"] for r in self.records})

    @staticmethod
    def _options(row: dict, where: str) -> dict[str, str]:
        opts = row.get("options")
        if isinstance(opts, list):
            opts = dict(zip(LETTERS, opts))
        elif opts is None:
            opts = {k: row[k] for k in LETTERS if k in row}
        if not isinstance(opts, dict):
            raise BadRecord(f"{where}: 'options' must be {{'A': text, ...}} or a list of texts")
        opts = {k: str(v).strip() for k, v in opts.items() if not _absent(v)}
        if len(opts) < 2 or list(opts) != list(LETTERS[: len(opts)]):
            raise BadRecord(f"{where}: need at least two options lettered A, B, ... without gaps, got {sorted(opts)}")
        return opts

    def _picture(self, row: dict, where: str):
        """("file", path) or ("b64", key of the base64 text) for the record's image."""
        if not _absent(row.get("image_base64")):
            self._pictures[where] = row["image_base64"]
            return ("b64", where)
        image = row.get("image")
        if _absent(image):
            raise BadRecord(f"{where}: no image (a base64 'image' cell, 'image_base64', or an image file)")
        image = str(image)
        if self.source_files[0].suffix.lower() == ".tsv":
            key = image if len(image) <= 64 else str(row.get("index"))
            if key not in self._pictures:
                raise BadRecord(f"{where}: image refers to row index {image!r}, which holds no picture")
            return ("b64", key)
        return ("file", self.image_path(image, where))

    def _record(self, row, where: str) -> dict:
        if not isinstance(row, dict):
            raise BadRecord(f"{where}: record is not an object")
        question = check_text(row.get("question"), where, "question").strip()
        if row.get("options") is None and all(_absent(row.get(k)) for k in LETTERS):
            question, inline = inline_options(question)  # MMStar: the options inside the question
            row = {**row, **inline}
        options = self._options(row, where)
        answer = str(row.get("answer", "")).strip()
        if answer not in options:
            raise BadRecord(f"{where}: answer {answer!r} is not one of the option letters {', '.join(options)}")
        index = row.get("index", row.get("id", row.get("question_id", len(self.records))))
        return {
            "id": str(index),
            "index": str(index),
            "question": question,
            "hint": None if _absent(row.get("hint")) else str(row["hint"]).strip(),
            "options": options,
            "answer": answer,
            "category": "all" if _absent(row.get("category")) else str(row["category"]),
            "picture": self._picture(row, where),
            "where": where,
        }

    def _load(self, rec: dict) -> dict:
        kind, ref = rec["picture"]
        if kind == "file":
            image = self.decoded(ref, ref, rec["where"])
        else:
            try:
                data = base64.b64decode(self._pictures[ref], validate=False)
            except (binascii.Error, ValueError) as err:
                raise BadRecord(f"{rec['where']}: the image is not valid base64 ({err})") from err
            image = self.decoded(("b64", ref), data, rec["where"])
        item = {k: v for k, v in rec.items() if k not in ("picture", "where", "index")}
        item["image"] = image
        return item

    def texts(self):
        for r in self.records:
            yield r["question"]
            yield from r["options"].values()
