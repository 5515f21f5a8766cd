"""The multiple_choice suite: MMBench / MMStar style questions with lettered options, accuracy per category.

Items {"id", "image", "question", "options": {"A": text, ...}, "answer": letter, "category", optional "hint" and
"group"} (data/benchmarks/multiple_choice.py). mode "generate" parses the generated answer with
`metrics.parse_choice` (a letter in its usual forms, else the option's text); "likelihood" takes the letter of
highest log p(letter | image, prompt). `circular=True` is MMBench's CircularEval: a question counts only if it is
right under every rotation of its options - rotated here, or, when the file already holds the rotated copies
(items sharing a `group`), those copies.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...data.benchmarks.multiple_choice import MC_PROMPT
from ...registry import ConfigError
from .. import metrics as M
from .common import (
    decoding,
    generate,
    item_chunks,
    pair_scores,
    param_from,
    progress_bar,
    reading,
    require,
    save_thumbnails,
    settings,
    without_images,
)


def render(template: str, row: dict, options: dict[str, str]) -> str:
    """The prompt of one trial; {question} carries the hint before it unless the template has its own {hint}."""
    question = row["question"]
    if row.get("hint") and "{hint}" not in template:
        question = f"{row['hint']}\n{question}"  # LLaVA-1.5's layout: the hint, then the question
    lines = "\n".join(f"{k}. {v}" for k, v in options.items())
    return template.format(question=question, options=lines, hint=row.get("hint") or "")


class Trial(NamedTuple):
    """One asking of a question: its row, the options as shown, the right letter, its group, the rotation."""

    row: int
    options: dict
    answer: str
    group: str
    rotation: int


def _trials(rows: list[dict], circular: bool, file_groups: bool, offset: int = 0) -> list[Trial]:
    """Every asking of the rows' questions (row indices counted from `offset`)."""
    out = []
    for i, r in enumerate(rows, start=offset):
        if file_groups:  # VLMEvalKit's circular files: the rotations are rows of their own
            original = r["id"] == r["group"]
            if circular or original:
                out.append(Trial(i, r["options"], r["answer"], r["group"], 0 if original else 1))
        elif circular:
            for k in range(len(r["options"])):
                opts, ans = M.rotate_options(r["options"], r["answer"], k)
                out.append(Trial(i, opts, ans, r["id"], k))
        else:
            out.append(Trial(i, r["options"], r["answer"], r["id"], 0))
    return out


def _choose(model, images, prompts, options, mode, batch_size, max_new_tokens, bar):
    """(predicted letter or None, raw answer) per trial; `options` is each trial's {letter: text}."""
    if mode == "generate":
        raw = generate(model, images, prompts, batch_size, max_new_tokens, bar=bar)
        return [M.parse_choice(t, opts) for t, opts in zip(raw, options)], raw
    letters = sorted({k for opts in options for k in opts})
    # letter -> [T] log p(letter | image, prompt); a trial compares only its own letters
    logp = {k: pair_scores(model, images, [k] * len(images), prompts, batch_size, False) for k in letters}
    preds = [max(opts, key=lambda k, j=j: logp[k][j]) for j, opts in enumerate(options)]
    bar.update(len(options))
    return preds, [" ".join(f"{k}:{logp[k][j]:.3f}" for k in opts) for j, opts in enumerate(options)]


def multiple_choice(
    model,
    dataset,
    prompt: str | None = None,
    mode: str = "generate",
    circular: bool = False,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    limit: int | None = None,
    n_gallery: int = 8,
    out_dir=None,
    progress: bool = True,
) -> dict:
    """Accuracy overall and per category (circular when asked), the share of unparsed answers, and with
    `circular` also the plain (first rotation) accuracy. The prompt's slots: {question}, {options}, {hint}."""
    require(model, "generative", "multiple_choice")
    if mode not in ("generate", "likelihood"):
        raise ConfigError(f"multiple_choice mode must be 'generate' or 'likelihood', got {mode!r}")
    prompt = param_from(prompt, dataset, "prompt", MC_PROMPT)
    if "{question}" not in prompt or "{options}" not in prompt:
        raise ConfigError("the multiple_choice prompt needs {question} and {options} slots, e.g. " + repr(MC_PROMPT))
    n = len(dataset) if limit is None else min(limit, len(dataset))
    bar = progress_bar(None if circular else n, "multiple_choice", progress)  # rotations: n options each
    rows, trials, preds, raw, prompts, tally = [], [], [], [], [], reading(dataset)
    for chunk in item_chunks(dataset, limit, "multiple_choice", tally=tally):
        asked = _trials(chunk, circular, any("group" in r for r in chunk), offset=len(rows))
        chunk_prompts = [render(prompt, chunk[t.row - len(rows)], t.options) for t in asked]
        images = [chunk[t.row - len(rows)]["image"] for t in asked]
        p, a = _choose(model, images, chunk_prompts, [t.options for t in asked], mode, batch_size, max_new_tokens, bar)
        trials, preds, raw, prompts = trials + asked, preds + p, raw + a, prompts + chunk_prompts
        rows += without_images(chunk, n_gallery - len(rows))
    bar.close()
    cats = [rows[t.row]["category"] for t in trials]
    scored = M.choice_accuracy(preds, [t.answer for t in trials], cats, [t.group for t in trials])
    metrics = {"accuracy": scored["accuracy"], **{f"acc_{c}": v for c, v in scored["per_category"].items()}}
    metrics["unparsed"] = scored["unparsed"]
    first = [j for j, t in enumerate(trials) if t.rotation == 0]
    how = "off"
    if circular:
        plain = M.choice_accuracy(
            [preds[j] for j in first],
            [trials[j].answer for j in first],
            [cats[j] for j in first],
            [str(j) for j in first],
        )
        metrics["plain_accuracy"] = plain["accuracy"]
        how = "the file's rotated copies" if any("group" in r for r in rows) else "every rotation of the options"
    shown = [j for j in first if "image" in rows[trials[j].row]][:n_gallery]
    paths = save_thumbnails(
        [rows[trials[j].row]["image"] for j in shown], [rows[trials[j].row]["id"] for j in shown], out_dir, "mc"
    )
    samples = [
        {
            "id": rows[trials[j].row]["id"],
            "image": path,
            "prompt": prompts[j],
            "answer": raw[j],
            "truth": trials[j].answer,
            "correct": preds[j] == trials[j].answer,
        }
        for j, path in zip(shown, paths)
    ]
    return {
        "suite": "multiple_choice",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            rows=tally,
            prompt=prompt,
            mode=mode,
            circular=how,
            max_new_tokens=max_new_tokens,
            decoding=decoding(1) if mode == "generate" else "none (likelihood of each letter)",
            parser="modalign.eval.metrics.parse_choice: letter forms, then option text"
            if mode == "generate"
            else "argmax_letter log p(letter | image, prompt)",
            trials=len(trials),
            limit=limit,
        ),
        "figures": {"per_category": {c: float(np.round(v, 6)) for c, v in scored["per_category"].items()}},
        "samples": samples,
    }
