"""Suites that read a vision-language model's generations: caption, vqa, pope, chair, grounding.

Each records its prompt and parser in `settings` and returns a few `samples` (image thumbnail, prompt, answer,
truth, hallucinated words) for the report's gallery. Greedy decoding throughout, so runs are reproducible.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from ...encoders.cache import image_key
from ...registry import ConfigError
from .. import metrics as M
from ..metrics.ptb import ptb_tokenize
from ..metrics.vqa import RULES as VQA_RULES
from .common import (
    decoding,
    generate,
    item_chunks,
    items,
    pair_scores,
    param_from,
    progress_bar,
    reading,
    require,
    row_images,
    row_media,
    save_thumbnails,
    settings,
    without_images,
)

CAPTION_TOKENIZERS = {
    "ptb": (
        ptb_tokenize,
        "ptb: coco-caption's PTBTokenizer -lowerCase + PUNCTUATIONS filter (modalign.eval.metrics.ptb)",
    ),
    "simple": (M.tokenize, "simple: lower case, punctuation removed (modalign.eval.metrics.captioning.tokenize)"),
}

# LLaVA-1.5's short-answer instruction, the default of the VQA-style suites (its VQAv2 / GQA evaluation prompt)
SHORT_ANSWER = "Answer with a single word or phrase."


def _gallery(rows, answers, truths, prompts, out_dir, sub, n, extra=None) -> list[dict]:
    n = min(n, len(rows))
    pictures = [_picture(r) for r in rows[:n]]
    shown = [i for i, p in enumerate(pictures) if p is not None]
    saved = save_thumbnails(  # numbered: records may share an id without sharing a picture
        [pictures[i] for i in shown], [f"{i}-{rows[i]['id']}" for i in shown], out_dir, sub
    )
    paths = [None] * n
    for i, path in zip(shown, saved):
        paths[i] = path
    samples = []
    for i in range(n):
        s = {"id": rows[i]["id"], "image": paths[i], "prompt": prompts[i], "answer": answers[i], "truth": truths[i]}
        if extra is not None:
            s.update(extra[i])
        samples.append(s)
    return samples


def _picture(row: dict):
    """What a gallery row shows: the image, the first of several, a video's first frame, or nothing (audio)."""
    if row.get("image") is not None:
        return row["image"]
    if row.get("images"):
        return row["images"][0]
    if row.get("video"):
        return row["video"][0]
    return None


def caption(
    model,
    dataset,
    prompt: str | None = "Describe the image.",
    max_new_tokens: int = 32,
    batch_size: int = 16,
    limit: int | None = None,
    n_gallery: int = 8,
    out_dir=None,
    progress: bool = True,
    repetition_penalty: float = 1.0,
    num_beams: int = 1,
    tokenizer: str = "ptb",
) -> dict:
    """Caption each unique picture (items showing the same picture are its references, wherever they are in the
    dataset; grouped by content, never by id, so distinct pictures that share an id stay apart);
    BLEU-1..4, ROUGE-L, CIDEr-D on `tokenizer` "ptb" (coco-caption's PTBTokenizer + punctuation filter, in Python) or
    "simple" (lower case, punctuation removed). Greedy decoding, or beam search with `num_beams` > 1;
    `repetition_penalty` > 1 discourages repeated tokens (transformers' meaning)."""
    require(model, "generative", "caption")
    if tokenizer not in CAPTION_TOKENIZERS:
        raise ConfigError(f"caption tokenizer must be one of {', '.join(CAPTION_TOKENIZERS)}, got {tokenizer!r}")
    refs: dict[str, list[str]] = {}
    first: dict[str, dict] = {}
    hyps: dict[str, str] = {}
    tally = reading(dataset)
    bar = progress_bar(None, "caption", progress)
    # a chunk at a time: 5,000 COCO pictures never all at once
    for chunk in item_chunks(dataset, limit, "caption", tally=tally):
        new, keys = [], []
        for r in chunk:
            key = image_key(r["image"])
            refs.setdefault(key, []).append(r["text"])
            if key not in first:
                first[key] = without_images([r], n_gallery - len(first))[0]
                new.append(r)
                keys.append(key)
        answers = generate(
            model,
            [r["image"] for r in new],
            [prompt] * len(new),
            batch_size,
            max_new_tokens,
            repetition_penalty=repetition_penalty,
            num_beams=num_beams,
            bar=bar,
        )
        hyps.update(zip(keys, answers))
    bar.close()
    uniq = list(first.values())
    hyps = [hyps[k] for k in first]
    ref_lists = [refs[k] for k in first]
    metrics = M.caption_metrics(hyps, ref_lists, CAPTION_TOKENIZERS[tokenizer][0])
    return {
        "suite": "caption",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            rows=tally,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            decoding=decoding(num_beams),
            repetition_penalty=repetition_penalty,
            tokenizer=CAPTION_TOKENIZERS[tokenizer][1],
            limit=limit,
        ),
        "samples": _gallery(
            uniq,
            hyps,
            [" | ".join(r) for r in ref_lists],
            [prompt or "(caption format)"] * len(uniq),
            out_dir,
            "caption",
            n_gallery,
        ),
    }


def _prompt(prompt, dataset, slot: str, suite: str) -> str:
    """The prompt given, else the dataset's own (a benchmark reader's published one), else the built-in default."""
    prompt = param_from(prompt, dataset, "prompt", "{question} " + SHORT_ANSWER)
    if "{" + slot + "}" not in prompt:
        raise ConfigError(f"the {suite} prompt needs a {{{slot}}} slot, e.g. '{{{slot}}} " + SHORT_ANSWER + "'")
    return prompt


def vqa(
    model,
    dataset,
    prompt: str | None = None,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    limit: int | None = None,
    n_gallery: int = 8,
    out_dir=None,
    progress: bool = True,
    rule: str = "vqa",
    mode: str = "generate",
    choices: list[str] | None = None,
) -> dict:
    """VQAv2 accuracy overall and per question type (`qtype`: VQAv2's answer types); `answer` may be one string or
    a list: annotators' answers under `rule` "vqa" (VQAv2's), accepted alternatives under "any". The prompt defaults
    to the dataset's `prompt`, else "{question} " + SHORT_ANSWER. Items are read CHUNK at a time, so a large set
    never holds all its pictures. Items about a clip or a video (`audio` / `video`: the sounds and motion worlds)
    are asked with it.

    mode "generate" scores the greedy answer; "likelihood" answers closed questions with the choice the model gives
    the highest length-normalised log p(choice | image, prompt): `choices` for every item, else each item's own
    `choices` list (e.g. ["yes", "no"]); it reads images only."""
    require(model, "generate" if mode == "generate" else "generative", "vqa")
    if rule not in VQA_RULES:
        raise ConfigError(f"vqa rule must be one of {', '.join(VQA_RULES)}, got {rule!r}")
    if mode not in ("generate", "likelihood"):
        raise ConfigError(f"vqa mode must be 'generate' or 'likelihood', got {mode!r}")
    prompt = _prompt(prompt, dataset, "question", "vqa")
    rows, preds, shown, prompts, tally = [], [], [], [], reading(dataset)
    bar = progress_bar(len(dataset) if limit is None else min(limit, len(dataset)), "vqa", progress)
    for chunk in item_chunks(dataset, limit, "vqa", tally=tally):
        chunk_prompts = [prompt.format(question=r["question"]) for r in chunk]
        images, media = row_images(chunk), row_media(chunk)
        if mode == "generate":
            answers = generate(model, images, chunk_prompts, batch_size, max_new_tokens, bar=bar, **media)
            preds += answers
            shown += answers
        else:
            if media or images is None:
                raise ConfigError(
                    "vqa mode 'likelihood' scores questions about images; items with audio or video "
                    "(or without an image) are asked with mode 'generate'"
                )
            p, sh = _choose_by_likelihood(model, chunk, images, chunk_prompts, choices, batch_size)
            preds += p
            shown += sh
            bar.update(len(chunk))
        rows += without_images(chunk, n_gallery - len(rows))
        prompts += chunk_prompts
    bar.close()
    s = M.vqa_score(preds, [r["answer"] for r in rows], [r.get("qtype", "all") for r in rows], rule)
    metrics = {"accuracy": s["accuracy"], **{f"acc_{t}": v for t, v in s["per_qtype"].items()}}
    figures = {}
    if any(r.get("question_type") for r in rows):  # VQAv2's 65 question types ("what color is", ...)
        figures["per_question_type"] = M.vqa_score(
            preds, [r["answer"] for r in rows], [str(r.get("question_type")) for r in rows], rule
        )["per_qtype"]
    truths = [r["answer"] if isinstance(r["answer"], str) else "/".join(r["answer"]) for r in rows]
    return {
        "suite": "vqa",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            rows=tally,
            prompt=prompt,
            mode=mode,
            max_new_tokens=max_new_tokens,
            decoding=decoding(1),
            parser=(
                "VQAv2 normalisation (processPunctuation, processDigitArticle); "
                if mode == "generate"
                else "argmax length-normalised log p(choice); "
            )
            + ("10-choose-9 annotator average" if rule == "vqa" else "any accepted answer"),
            limit=limit,
        ),
        "figures": figures,
        "samples": _gallery(
            rows, shown, truths, prompts, out_dir, "vqa", n_gallery, [{"correct": a > 0} for a in s["per_item"]]
        ),
    }


def _choose_by_likelihood(model, chunk, images, prompts, choices, batch_size) -> tuple[list[str], list[str]]:
    """The most likely choice per item and a shown string with every choice's score."""
    options = [list(choices) if choices is not None else r.get("choices") for r in chunk]
    if any(not o for o in options) or len({len(o) for o in options}) != 1:
        raise ConfigError(
            "vqa mode 'likelihood' needs the same number of choices for every item: give `choices` "
            "(e.g. [yes, no]) or items with a `choices` list"
        )
    scores = np.stack(
        [
            pair_scores(model, images, [o[c] for o in options], prompts, batch_size, progress=False)
            for c in range(len(options[0]))
        ],
        axis=1,
    )  # [N, C]
    preds = [o[int(k)] for o, k in zip(options, scores.argmax(1))]
    shown = [" vs ".join(f"{c} ({v:.3f})" for c, v in zip(o, row)) for o, row in zip(options, scores)]
    return preds, shown


def pope(
    model,
    dataset,
    mode: str = "generate",
    prompt: str | None = None,
    max_new_tokens: int = 8,
    batch_size: int = 16,
    limit: int | None = None,
    n_gallery: int = 8,
    out_dir=None,
    progress: bool = True,
) -> dict:
    """POPE per sampler and overall. mode 'generate' parses the answer; 'likelihood' compares P(yes) and P(no).
    The yes-ratio is of the predictions (the POPE paper's), not of the labels. The prompt defaults to the dataset's
    `prompt`, else "{question} " + SHORT_ANSWER."""
    require(model, "generative", "pope")
    if mode not in ("generate", "likelihood"):
        raise ConfigError(f"pope mode must be 'generate' or 'likelihood', got {mode!r}")
    prompt = _prompt(prompt, dataset, "question", "pope")
    rows, raw, preds, prompts, tally = [], [], [], [], reading(dataset)
    bar = progress_bar(len(dataset) if limit is None else min(limit, len(dataset)), "pope", progress)
    for chunk in item_chunks(dataset, limit, "pope", tally=tally):
        chunk_prompts = [prompt.format(question=r["question"]) for r in chunk]
        images = [r["image"] for r in chunk]
        if mode == "generate":
            answers = generate(model, images, chunk_prompts, batch_size, max_new_tokens, bar=bar)
            raw += answers
            preds += [M.parse_yes_no(t) for t in answers]
        else:
            logp_yes = pair_scores(model, images, ["yes"] * len(chunk), chunk_prompts, batch_size, False)
            logp_no = pair_scores(model, images, ["no"] * len(chunk), chunk_prompts, batch_size, False)
            preds += M.pope_from_likelihood(logp_yes, logp_no)
            raw += [f"yes ({a:.3f}) vs no ({b:.3f})" for a, b in zip(logp_yes, logp_no)]
            bar.update(len(chunk))
        rows += without_images(chunk, n_gallery - len(rows))
        prompts += chunk_prompts
    bar.close()
    labels = [r["answer"] for r in rows]
    per_sampler = {}
    for sampler in sorted({r.get("sampler", "all") for r in rows}):
        idx = [i for i, r in enumerate(rows) if r.get("sampler", "all") == sampler]
        per_sampler[sampler] = M.pope_metrics([preds[i] for i in idx], [labels[i] for i in idx])
    overall = M.pope_metrics(preds, labels)
    metrics = {k: overall[k] for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")}
    for sampler, m in per_sampler.items():
        metrics.update(
            {f"{sampler}_f1": m["f1"], f"{sampler}_accuracy": m["accuracy"], f"{sampler}_yes_ratio": m["yes_ratio"]}
        )
    return {
        "suite": "pope",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            rows=tally,
            prompt=prompt,
            mode=mode,
            max_new_tokens=max_new_tokens,
            decoding=decoding(1) if mode == "generate" else "none (likelihoods)",
            parser="first sentence; 'no'/'not' -> no" if mode == "generate" else "P(yes)>P(no)",
            yes_ratio="predicted yes / N (POPE paper; lmms-eval divides the labels' yes count instead)",
            limit=limit,
        ),
        "figures": {"pope_samplers": per_sampler},
        "samples": _gallery(
            rows, raw, labels, prompts, out_dir, "pope", n_gallery, [{"correct": p == t} for p, t in zip(preds, labels)]
        ),
    }


def _surface_words(caption: str, hallucinated: set[str], vocabulary: dict) -> list[str]:
    """The words of `caption` that name a hallucinated object, for highlighting in the report gallery."""
    words = re.findall(r"[A-Za-z]+", caption)
    marked: list[str] = []
    for i, w in enumerate(words):
        if set(M.extract_objects(w, vocabulary)) & hallucinated:
            marked.append(w)
        # two-word names ("traffic light") whose words name nothing on their own
        pair = words[i : i + 2]
        if (
            len(pair) == 2
            and not any(M.extract_objects(p, vocabulary) for p in pair)
            and set(M.extract_objects(" ".join(pair), vocabulary)) & hallucinated
        ):
            marked.extend(pair)
    return marked


def _check_vocabulary(vocabulary, source: str) -> dict[str, list[str]]:
    """`vocabulary` if it is a {canonical: [synonyms]} dict of strings, else a ConfigError naming `source`."""
    problem = None
    if not isinstance(vocabulary, dict) or not vocabulary:
        problem = f"got {type(vocabulary).__name__} {vocabulary!r:.80}"
    else:
        for canon, syns in vocabulary.items():
            if not isinstance(canon, str) or not canon.strip():
                problem = f"key {canon!r} is not a non-empty name"
            elif not isinstance(syns, list) or not all(isinstance(w, str) for w in syns):
                problem = f"{canon!r} maps to {syns!r:.80}, not a list of strings"
            if problem:
                break
    if problem:
        raise ConfigError(
            f"{source} must be a non-empty {{canonical name: [synonyms, ...]}} mapping, e.g. "
            f'{{"dog": ["puppy", "dogs"], "traffic light": []}}; {problem}'
        )
    return vocabulary


def chair_vocabulary(vocabulary, dataset) -> dict[str, list[str]] | None:
    """The chair suite's synonym table: `vocabulary` as a dict or a path to a JSON file of one, else the dataset's
    `vocabulary` attribute, else None (the suite then takes the canonical names found in the items)."""
    if isinstance(vocabulary, (str, os.PathLike)):
        path = Path(vocabulary)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"chair vocabulary file {str(path)!r} does not exist: give a JSON file of {{canonical name: "
                "[synonyms, ...]}, a mapping itself, or no vocabulary to use the dataset's own"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"chair vocabulary file {str(path)!r} is not readable JSON: {err}") from None
        return _check_vocabulary(raw, f"chair vocabulary file {str(path)!r}")
    if vocabulary is not None:
        return _check_vocabulary(vocabulary, "the chair suite's vocabulary")
    own = getattr(dataset, "vocabulary", None)
    if own is not None:
        return _check_vocabulary(own, f"the dataset's vocabulary ({type(dataset).__name__}.vocabulary)")
    return None


def chair(
    model,
    dataset,
    prompt: str = "Describe the image in detail.",
    vocabulary=None,
    max_new_tokens: int = 48,
    batch_size: int = 16,
    limit: int | None = None,
    n_gallery: int = 8,
    out_dir=None,
    progress: bool = True,
    repetition_penalty: float = 1.0,
    num_beams: int = 1,
) -> dict:
    """CHAIR_i / CHAIR_s / recall / all_named of free captions against each image's object list; when the items
    carry attribute phrases (the shapes world's "red circle"), also phrase_recall and phrases_all_named.
    Greedy decoding, or beam search with `num_beams` > 1; `repetition_penalty` > 1 discourages repeated tokens
    (transformers' meaning).

    vocabulary: {canonical: [synonyms]}, or the path of a JSON file holding one; unset, the dataset's `vocabulary`
    attribute (the shapes world has one), else the canonical names found in the items (no synonyms).
    """
    require(model, "generative", "chair")
    vocabulary = chair_vocabulary(vocabulary, dataset)  # a bad table fails before any image is read
    rows = items(dataset, limit, "chair", progress)
    if vocabulary is None:  # the objects the items name, without synonyms
        vocabulary = {o: [] for r in rows for o in r["objects"]}
    hyps = generate(
        model,
        [r["image"] for r in rows],
        [prompt] * len(rows),
        batch_size,
        max_new_tokens,
        progress,
        repetition_penalty,
        num_beams,
    )
    c = M.chair(hyps, [r["objects"] for r in rows], vocabulary)
    metrics = {k: c[k] for k in ("CHAIR_i", "CHAIR_s", "recall", "all_named")}
    if all("phrases" in r for r in rows):
        metrics.update(M.phrase_coverage(hyps, [r["phrases"] for r in rows]))
    extra = [
        {"hallucinated": p["hallucinated"], "highlight": _surface_words(h, set(p["hallucinated"]), vocabulary)}
        for h, p in zip(hyps, c["per_caption"])
    ]
    return {
        "suite": "chair",
        "metrics": metrics,
        "settings": settings(
            model,
            dataset,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            decoding=decoding(num_beams),
            repetition_penalty=repetition_penalty,
            vocabulary_size=len(vocabulary),
            limit=limit,
        ),
        "samples": _gallery(
            rows,
            hyps,
            [", ".join(r["objects"]) for r in rows],
            [prompt] * len(rows),
            out_dir,
            "chair",
            n_gallery,
            extra,
        ),
    }


def grounding(
    model,
    dataset,
    prompt: str = "Give the bounding box [x0, y0, x1, y1] of: {expression}",
    coords: str = "pixel",
    threshold: float = 0.5,
    max_new_tokens: int = 24,
    batch_size: int = 16,
    limit: int | None = None,
    n_gallery: int = 8,
    out_dir=None,
    progress: bool = True,
) -> dict:
    """Parse a box from each generation; accuracy at IoU >= threshold. coords='normalized' scales [0,1] boxes."""
    require(model, "generative", "grounding")
    if coords not in ("pixel", "normalized"):
        raise ConfigError(f"grounding coords must be 'pixel' or 'normalized', got {coords!r}")
    rows = items(dataset, limit, "grounding", progress)
    prompts = [prompt.format(expression=r["expression"]) for r in rows]
    raw = generate(model, [r["image"] for r in rows], prompts, batch_size, max_new_tokens, progress)
    boxes = []
    for r, text in zip(rows, raw):
        b = M.parse_box(text)
        if b is not None and coords == "normalized":
            w, h = r["image"].size
            b = [b[0] * w, b[1] * h, b[2] * w, b[3] * h]
        boxes.append(b)
    g = M.grounding_accuracy(boxes, [r["box"] for r in rows], threshold)
    metrics = {k: g[k] for k in (f"acc@{threshold}", "mean_iou", "unparsed")}
    return {
        "suite": "grounding",
        "metrics": metrics,
        "settings": settings(
            model, dataset, prompt=prompt, coords=coords, parser="first [x0, y0, x1, y1]", limit=limit
        ),
        "samples": _gallery(
            rows,
            raw,
            [str(r["box"]) for r in rows],
            prompts,
            out_dir,
            "grounding",
            n_gallery,
            [{"correct": iou >= threshold} for iou in g["ious"]],
        ),
    }


__all__ = ["caption", "chair", "grounding", "pope", "vqa"]
