"""What an attribution explains: character spans of the text (words, phrases, the whole text), and the patch grid a
map lives on.
"""

from __future__ import annotations

import math
import re

_WORD = re.compile(r"[\w'-]+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word ("a red circle." -> a, red, circle); punctuation is not a word."""
    return [m.span() for m in _WORD.finditer(text)]


def phrase_span(text: str, phrase: str) -> tuple[int, int]:
    """The first occurrence of `phrase` in `text` (case-insensitive) as a (start, end) span."""
    at = text.lower().find(phrase.lower())
    if at < 0 or not phrase:
        raise ValueError(f"phrase {phrase!r} does not occur in the text {text!r}; pass a phrase that is part of it")
    return at, at + len(phrase)


def resolve_spans(text: str, spans) -> list[tuple[int, int]]:
    """`"words"`, `"text"` (the whole text), or a list of phrases (str) / (start, end) spans -> spans."""
    if not text.strip():
        raise ValueError("the text to explain is empty")
    if spans == "words":
        return word_spans(text)
    if spans == "text":
        return [(0, len(text))]
    out = []
    for s in spans:
        if isinstance(s, str):
            out.append(phrase_span(text, s))
        else:
            a, b = int(s[0]), int(s[1])
            if not 0 <= a < b <= len(text):
                raise ValueError(f"span {(a, b)} is outside the text (0..{len(text)})")
            out.append((a, b))
    return out


def grid_side(n_patches: int) -> int:
    """Side of the square patch grid of `n_patches` tokens (towers here give square grids)."""
    side = math.isqrt(n_patches)
    if side * side != n_patches:
        raise ValueError(
            f"the vision tower gives {n_patches} tokens, not a square grid: maps need an h x w grid "
            f"(a tower with a CLS token must drop it from `tokens`)"
        )
    return side
