"""The checks every reader applies to LLaVA-format conversations and captions, at read time and naming the record.

A conversation is `[{"from": "human", "value": ...}, {"from": "gpt", "value": ...}, ...]`, optionally led by one
`{"from": "system", ...}` turn: turns alternate starting with the human, every value is a non-empty string, at least
one answer (gpt turn) exists to learn from, and the image marker `<image>` appears only in human turns, once per image
of the record. A single-image record without a
marker gets one before its first question, as LLaVA's preprocessing does. A caption never holds the marker: the
caption objective places the image itself. Found later (in a collate, hours into a run) these would name no record.
"""

from __future__ import annotations

from .records import BadRecord, check_text

IMAGE_MARKER = "<image>"  # fixed by the LLaVA data format (models/chat_template.IMAGE_TOKEN is the same string)


def check_caption(text, where: str, field: str = "text") -> str:
    text = check_text(text, where, field)
    if IMAGE_MARKER in text:
        raise BadRecord(f"{where}: {field} contains {IMAGE_MARKER}; a caption holds no image marker")
    return text


def check_conversation(convo, where: str, n_images: int) -> list[dict]:
    """The validated turns (a copy; the first question gains a marker when one image has none)."""
    if not isinstance(convo, list) or not convo:
        raise BadRecord(f"{where}: 'conversations' must be a non-empty list of turns")
    turns = []
    # an optional first turn from "system" (the instructions the conversation is held under), then human/gpt
    first = 1 if isinstance(convo[0], dict) and convo[0].get("from") == "system" else 0
    for t, turn in enumerate(convo):
        expected = "system" if t < first else "human" if (t - first) % 2 == 0 else "gpt"
        if not isinstance(turn, dict) or turn.get("from") != expected:
            raise BadRecord(f"{where}: turn {t} must be from {expected!r} (turns alternate human/gpt)")
        value = check_text(turn.get("value"), where, f"turn {t} value")
        if expected != "human" and IMAGE_MARKER in value:
            what = "an answer" if expected == "gpt" else "the system turn"
            raise BadRecord(f"{where}: turn {t} ({what}) contains {IMAGE_MARKER}; images go in human turns")
        turns.append({"from": expected, "value": value})
    if len(turns) < first + 2:
        raise BadRecord(f"{where}: the conversation has no answer (gpt turn) to learn from")
    n_markers = sum(t["value"].count(IMAGE_MARKER) for t in turns)
    if n_images == 1 and n_markers == 0:
        turns[first]["value"] = IMAGE_MARKER + "\n" + turns[first]["value"]
    elif n_markers != n_images:
        raise BadRecord(f"{where}: {n_markers} {IMAGE_MARKER} markers for {n_images} image(s); give one per image")
    return turns
