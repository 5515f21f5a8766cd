"""The words of a world's record (caption, question and answer, conversation turns): what a from-scratch
tokenizer is trained on."""

from __future__ import annotations

from collections.abc import Iterator


def record_texts(rec: dict) -> Iterator[str]:
    if "text" in rec:
        yield rec["text"]
    if "question" in rec:
        yield rec["question"]
        yield rec["answer"]
    for turn in rec.get("conversations", []):
        yield turn["value"]
