"""Word error rate of transcripts: (substitutions + deletions + insertions) / reference words, after normalisation.

`normalize_transcript` makes the comparison about words, not spelling: lower case, punctuation and hyphens to spaces,
digits read out as words ("10" -> "ten", "29340" -> "two nine three four zero"), "mr" -> "mister". Corpus WER sums
edits and reference words over all pairs (what ASR papers report); the per-utterance rates are returned too.
"""

from __future__ import annotations

import re

_NUMBERS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "10": "ten",
}
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def normalize_transcript(text: str) -> str:
    words = []
    for w in re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split():
        w = w.strip("'")
        if not w:
            continue
        if w.isdigit() and w not in _NUMBERS:
            words += [_NUMBERS[c] for c in w]
        else:
            words.append(_NUMBERS.get(w, _ABBREVIATIONS.get(w, w)))
    return " ".join(words)


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists (unit costs)."""
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(hyp) + 1):
            cur = min(row[j] + 1, row[j - 1] + 1, prev + (ref[i - 1] != hyp[j - 1]))
            prev, row[j] = row[j], cur
    return row[len(hyp)]


def word_error_rate(references: list[str], hypotheses: list[str], normalize: bool = True) -> dict:
    """{"wer": corpus WER, "per_item": [WER of each pair], "ref_words": total reference words, "edits": total}."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    edits = words = 0
    per_item = []
    for ref, hyp in zip(references, hypotheses):
        r = (normalize_transcript(ref) if normalize else ref).split()
        h = (normalize_transcript(hyp) if normalize else hyp).split()
        e = edit_distance(r, h)
        edits, words = edits + e, words + len(r)
        per_item.append(e / max(1, len(r)))
    return {"wer": edits / max(1, words), "per_item": per_item, "ref_words": words, "edits": edits}
