"""Plain question answering files: JSONL, a JSON list, or CSV with a header; one row per question.

Fields: `image` (or file / filename / path / file_name), `question`, and `answer` (one string) or `answers` (a list
in JSON; in CSV one cell with the answers separated by `|`). Optional: `id` or `question_id`, and a category in
`question_type`, `answer_type`, `type` or `category` (the vqa suite's per-type breakdown). The vqa suite scores a list
of answers as annotators' (VQAv2's rule) or, with `rule=any`, as accepted alternatives.
"""

from __future__ import annotations

import csv
from pathlib import Path

from ..readers import IMAGE_KEYS
from ..records import BadRecord, check_text, decode_lines
from .base import BenchmarkDataset, existing_file, json_rows
from .vqav2 import VQA_PROMPT

TYPE_KEYS = ("question_type", "answer_type", "type", "category")


def csv_rows(path: Path, policy, delimiter: str = ","):
    """(where, row) per CSV/TSV row, where naming the physical line of the file."""
    lines = list(decode_lines(path, policy))
    reader = csv.DictReader((line for _, line in lines), delimiter=delimiter)
    for row in reader:
        n = lines[min(reader.line_num, len(lines)) - 1][0]
        yield f"{path}:{n}", row


class QAFile(BenchmarkDataset):
    """Questions about images under `images` (default: the file's folder)."""

    prompt = VQA_PROMPT

    def __init__(self, path, images=None, skip_bad: bool = False):
        p = existing_file(path, "QA file")
        super().__init__(images if images is not None else p.parent, skip_bad, [p])
        self.is_csv = p.suffix.lower() == ".csv"
        rows = csv_rows(p, self._policy) if self.is_csv else json_rows(p, self._policy)
        for where, row in rows:
            self.add(self._record, row, where)

    def _answers(self, row: dict, where: str):
        if row.get("answers") not in (None, ""):
            answers = row["answers"]
            if self.is_csv:
                answers = [a.strip() for a in answers.split("|")]
            if not isinstance(answers, list) or not answers:
                raise BadRecord(f"{where}: 'answers' must be a non-empty list of strings")
            return [check_text(a, where, "answers entry") for a in answers]
        if row.get("answer") in (None, ""):
            raise BadRecord(f"{where}: no answer; give 'answer' (a string) or 'answers' (a list)")
        return check_text(row["answer"], where, "answer")

    def _record(self, row, where: str) -> dict:
        if not isinstance(row, dict):
            raise BadRecord(f"{where}: record is not a JSON object")
        key = next((k for k in IMAGE_KEYS if row.get(k)), None)
        if key is None:
            raise BadRecord(f"{where}: no image field; name it one of {', '.join(IMAGE_KEYS)}")
        qtype = next((row[k] for k in TYPE_KEYS if row.get(k) not in (None, "")), "all")
        return {
            "id": str(row[key]),
            "qid": str(row.get("question_id") or row.get("id") or where),
            "path": self.image_path(row[key], where),
            "question": check_text(row.get("question"), where, "question"),
            "answer": self._answers(row, where),
            "qtype": str(qtype),
            "where": where,
        }

    def texts(self):
        for r in self.records:
            yield r["question"]
            yield from [r["answer"]] if isinstance(r["answer"], str) else r["answer"]
