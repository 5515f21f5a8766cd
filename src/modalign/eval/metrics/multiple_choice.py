"""Multiple-choice answers: the option a free answer names, circular rotations of the options, accuracy.

`parse_choice` reads, in this order (the first rule that decides wins):
1. the answer is a letter alone, maybe bracketed or followed by a mark: "B", "(B)", "[B]", "B.", "B)", "B:";
2. it starts with a letter and a mark: "B. a red circle", "(B) red", "B) red", "B: red";
3. a phrase names it: "The answer is B", "Answer: (B)", "option B", "the correct choice is B.";
4. exactly one option's text occurs in it as whole words, case-insensitively (an option whose text lies inside
   another found option's, as "red" in "dark red", gives way to the longer);
5. exactly one option letter stands alone as a capital word in it ("I pick C because ..."), where an "A" followed
   by a lower-case word is read as the article.
Otherwise the answer is unparsed (None) and counts as wrong. VLMEvalKit's exact-matching step is rules 5 then 4
(it gives up on any "A" in an answer of more than three words, and then asks an LLM judge); rules 1-3 make the
letter forms a model is told to write parse without a judge.

Circular evaluation (MMBench's CircularEval): a question with n options is asked n times, the options shifted one
place each time (rotation r puts option (i + r) mod n at letter i); it counts as right only if every rotation is.
"""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase
_ALONE = re.compile(r"^[\s(\[]*([A-Z])[\s)\]]*[.:)]?\s*$")
_LEADING = re.compile(r"^\s*[(\[]?([A-Z])(?:[)\]][.:]?|[.:)])(?:\s|$)")
_PHRASE = re.compile(
    r"(?i:answer|option|choice)(?:\s+(?i:is|would\s+be|should\s+be))?\s*[:\-]?\s*[(\[]?([A-Z])(?![A-Za-z])"
)
_WORDS = re.compile(r"[a-z0-9]+")


def _padded(text: str) -> str:
    return " " + " ".join(_WORDS.findall(text.lower())) + " "


def parse_choice(text: str, options: dict[str, str]) -> str | None:
    """The option letter `text` names (see the module docstring for the rules), or None."""
    letters = set(options)
    for pattern in (_ALONE, _LEADING):
        m = pattern.match(text)
        if m and m.group(1) in letters:
            return m.group(1)
    m = _PHRASE.search(text)
    if m and m.group(1) in letters:
        return m.group(1)
    said = _padded(text)
    found = {k: _padded(v) for k, v in options.items() if _padded(v).strip() and _padded(v) in said}
    found = {k: v for k, v in found.items() if not any(v != w and v in w for w in found.values())}
    if len(found) == 1:
        return next(iter(found))
    words = re.findall(r"[A-Za-z]+", text)
    standalone = {
        w
        for i, w in enumerate(words)
        if w in letters and not (w == "A" and i + 1 < len(words) and words[i + 1][:1].islower())
    }
    return standalone.pop() if len(standalone) == 1 else None


def rotate_options(options: dict[str, str], answer: str, r: int) -> tuple[dict[str, str], str]:
    """Rotation r of lettered options: letter i gets option (i + r) mod n; returns (options, the answer's letter)."""
    keys = [k for k in LETTERS if k in options][: len(options)]
    n = len(keys)
    texts = [options[k] for k in keys]
    rotated = {keys[i]: texts[(i + r) % n] for i in range(n)}
    return rotated, keys[(keys.index(answer) - r) % n]


def choice_accuracy(preds: list[str | None], answers: list[str], categories: list[str], groups: list[str]) -> dict:
    """Accuracy where every trial of a group must be right (a group is one question's rotations; a question
    asked once is a group of one), overall and per category (a group's category is its first trial's)."""
    if not (len(preds) == len(answers) == len(categories) == len(groups)) or not preds:
        raise ValueError("need one prediction, answer, category and group per trial (non-empty)")
    right: dict[str, bool] = {}
    category: dict[str, str] = {}
    for p, a, c, g in zip(preds, answers, categories, groups):
        right[g] = right.get(g, True) and p == a
        category.setdefault(g, c)
    per: dict[str, list[bool]] = {}
    for g, ok in right.items():
        per.setdefault(category[g], []).append(ok)
    return {
        "accuracy": sum(right.values()) / len(right),
        "per_category": {c: sum(v) / len(v) for c, v in sorted(per.items())},
        "unparsed": sum(p is None for p in preds) / len(preds),
        "n": len(right),
    }
