"""Synthetic tool-use conversations for teaching a small LM the two tool routes (the survey's data-driven route).

SmolLM2-135M-Instruct, asked through either route zero-shot, answers in sentences and never emits a JSON call (see
docs/TOOLS.md), so it is taught with LoRA on conversations written here. Each trace is made from invented tool
outputs — OCR lines of random words, ImageNet tagger labels with random probabilities (the real label set, so the
LM meets the tagger's vocabulary) — and a question whose answer follows from them by a general rule: the first line
of a page is its title, a word is in a text or not, the top label is what is shown, the last word of a compound label
is its kind ("tiger cat" is a cat, the head of an English noun compound), an object is there when a label names it.
Two formats, as the routes render them: `converter` (every tool's result in the prompt, then the answer) and `agent`
(the question, the assistant's JSON call of the tool the question needs, the result message, the answer).

Written as LLaVA-format JSONL of text-only conversations (`llava-json` with `allow_text_only: true` reads it), so a
recipe trains on it like any other data: `modalign tool-traces --out runs/tool-traces.jsonl`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .agent import AgentRoute, result_message
from .base import ToolResult
from .calls import format_call
from .converter import ConverterRoute
from .imagenet_tagger import ImageNetTagger, imagenet_labels
from .ocr import OCRTool

SHORT = "Answer with a single word or phrase."
N_ANIMALS = 398  # ImageNet-1k classes 0..397 (sorted WordNet ids) are animals, 398.. are objects and scenes


class _NoLM:
    name = "none"


def _tagger_text(rng, labels: list[str], top: int | None = None) -> tuple[str, list[tuple[int, float]]]:
    idx = [int(i) for i in rng.choice(len(labels), size=5, replace=False)]
    if top is not None:
        idx[0] = top
    p = np.sort(rng.dirichlet(np.full(5, 0.6)))[::-1]
    p = p * rng.uniform(0.5, 1.0)
    pairs = list(zip(idx, p.tolist()))
    return ", ".join(f"{labels[i]} {q:.2f}" for i, q in pairs), pairs


def _ocr_lines(rng, words: list[str]) -> list[str]:
    n = int(rng.integers(1, 5))
    return [" ".join(rng.choice(words, size=int(rng.integers(2, 8)))).capitalize() for _ in range(n)]


def _read_question(rng, lines: list[str], words: list[str]) -> tuple[str, str]:
    title = lines[0].split()
    kind = int(rng.integers(5))
    if kind == 0:
        return rng.choice(["What is the title of the page?", "What is the heading of the text?"]), lines[0].lower()
    if kind == 1:
        return "What is the first word of the title?", title[0].lower()
    if kind == 2:
        return "What is the last word of the title?", title[-1].lower()
    if kind == 3:
        return "What is written in the first line?", lines[0].lower()
    text = " ".join(lines).lower().split()
    word = str(rng.choice(text)) if rng.random() < 0.5 else str(rng.choice(words)).lower()
    return f"Does the text mention {word}?", "yes" if word in text else "no"


def _see_question(rng, labels, pairs) -> tuple[str, str]:
    top = pairs[0][0]
    head = labels[top].split()[-1].lower()
    kind = int(rng.integers(4))
    if kind == 0 and top < N_ANIMALS:
        return "What animal is in the photo?", head
    if kind == 1:
        return rng.choice(["What is shown in the image?", "What is in the picture?"]), labels[top].lower()
    if kind == 2:
        return f"What kind of {rng.choice(['thing', 'object'])} is this?", head
    if rng.random() < 0.5:
        return f"Is there a {head} in the image?", "yes"
    shown = {w.lower() for i, _ in pairs for w in labels[i].split()}
    while True:
        other = labels[int(rng.integers(len(labels)))].split()[-1].lower()
        if other not in shown:
            return f"Is there a {other} in the image?", "no"


def make_trace(rng, labels: list[str], words: list[str], fmt: str, tools=None) -> list[dict]:
    """One conversation ([{"role", "content"}]) in the converter or agent format, with its answer last."""
    ocr, tagger = tools or (OCRTool(), ImageNetTagger())
    reading = rng.random() < 0.4
    lines = _ocr_lines(rng, words) if reading or rng.random() < 0.2 else []
    tag_text, pairs = _tagger_text(rng, labels)
    if reading:
        q, a = _read_question(rng, lines, words)
    elif rng.random() < 0.15:
        q, a = "Is there any text in the image?", "yes" if lines else "no"
    else:
        q, a = _see_question(rng, labels, pairs)
    question = f"{q} {SHORT}"
    ocr_text = "\n".join(lines) if lines else "no text found"
    results = {"ocr": ToolResult("ocr", {}, ocr_text), "tagger": ToolResult("tagger", {}, tag_text)}
    if fmt == "converter":
        route = ConverterRoute(_NoLM(), [ocr, tagger])
        return [*route.messages(list(results.values()), question), {"role": "assistant", "content": a}]
    route = AgentRoute(_NoLM(), [ocr, tagger])
    need = "ocr" if reading or q.startswith("Is there any text") else "tagger"
    return [
        *route.start(question),
        {"role": "assistant", "content": format_call(need)},
        {"role": "user", "content": result_message(results[need])},
        {"role": "assistant", "content": a},
    ]


def write_traces(out: str | Path, n: int = 2000, seed: int = 0, formats=("converter", "agent")) -> Path:
    """n conversations (alternating formats) as LLaVA-format JSONL without images; returns the path."""
    rng = np.random.default_rng(seed)
    labels = imagenet_labels()
    words = sorted({w.lower() for lab in labels for w in lab.replace("-", " ").split() if w.isalpha() and len(w) > 2})
    tools = (OCRTool(), ImageNetTagger())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    roles = {"system": "system", "user": "human", "assistant": "gpt"}
    with open(out, "w") as fh:
        for i in range(n):
            conv = make_trace(rng, labels, words, formats[i % len(formats)], tools)
            turns = [{"from": roles[m["role"]], "value": m["content"]} for m in conv]
            fh.write(json.dumps({"id": f"trace-{i}", "conversations": turns}) + "\n")
    return out
