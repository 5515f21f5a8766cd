"""Rerank a describer's sampled descriptions by how well the objects they name explain its visual tokens.

A description that skips an object leaves that object's cells unexplained; one that invents an object names words no
cell holds. Trained with region words (models/region_words.py), each visual token scores the LM's words through its
input embeddings, so candidates can be checked against the tokens: per foreground cell, the best score (colour word
+ shape word, mean log-probabilities) among the pairs a candidate's sentences name (coverage), and per named pair its
best cell (support). Per held-out scene the script draws the greedy description and `--candidates` - 1 sampled ones,
keeps the one of highest coverage + support (the greedy one on ties), and prints CHAIR and phrase coverage (the
project's metrics) for the greedy and the kept descriptions, and the ceiling: how often any candidate names every
colour-shape phrase of its scene.

Foreground cells: `--mask tokens` (no annotation) takes the cells whose best shape word scores above the word
"background" (trained on the cells no object covers with `region_background: true`, but it works as well without:
docs/results/generative.md, eighteenth round); `--mask boxes` takes the cells under the true boxes, an oracle that
bounds what the tokens' mask could do. `--colour-floor F` adds colour_cover: the cells whose best colour word
scores above F must be explained by a colour the candidate names (docs/results/generative.md, twentieth round).
`--guided` decodes every candidate writing no colour-shape pair twice (scripts/guided_descriptions.py); with
`--steer` as well, with the tokens' budgets and subjects steered to the tokens' pairs not yet written, for a
describer whose background was trained as a region. Last, it counts how many of the phrases the greedy and the kept
descriptions leave out belong to objects touching another (boxes within a pixel), against all objects.

    OMP_NUM_THREADS=1 python scripts/rerank_descriptions.py runs/llava-shapes-describe/final --scenes 500 --mask boxes
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caption_errors import PROMPT, subjects  # noqa: E402  (sibling scripts, not a package)
from region_readout import object_cells  # noqa: E402

from modalign.data.language import object_phrase  # noqa: E402
from modalign.data.vocab import COLOR_NAMES, SHAPES, chair_synonyms  # noqa: E402
from modalign.eval.metrics import hallucination as H  # noqa: E402
from modalign.eval.pair_guide import PairGuide, cell_scores, foreground_from_tokens, tokens_budget  # noqa: E402
from modalign.models.region_words import check_grid  # noqa: E402

MASKS = ("tokens", "boxes")


def explain_score(pairs: list[tuple[str | None, str]], shape: torch.Tensor, colour: torch.Tensor,
                  foreground: list[int]) -> float:
    """Coverage (mean over foreground cells of the best named pair's score) + support (mean over named pairs of
    their best foreground cell's score); a pair named without a colour takes each cell's best colour. -inf when
    nothing is named or no cell is foreground."""
    if not pairs or not foreground:
        return float("-inf")
    fg = torch.tensor(foreground)
    cols = []
    for c, s in pairs:
        col = colour[fg].max(1).values if c is None else colour[fg, COLOR_NAMES.index(c)]
        cols.append(shape[fg, SHAPES.index(s)] + col)
    table = torch.stack(cols, 1)                                                       # [cells, pairs]
    return float(table.max(1).values.mean() + table.max(0).values.mean())


def colour_cover(pairs: list[tuple[str | None, str]], colour: torch.Tensor, floor: float) -> float:
    """Mean, over the cells whose best colour word scores above `floor`, of the best colour the pairs name: the
    tokens read colours more reliably than shapes, so a candidate that leaves a coloured region unnamed loses here
    even where a wrong shape of its own colour explains the region as well as the right one. -inf when the pairs
    name no colour, 0 when no cell is that sure of a colour."""
    named = sorted({COLOR_NAMES.index(c) for c, _ in pairs if c is not None})
    if not named:
        return float("-inf")
    sure = colour.max(1).values > floor
    if not bool(sure.any()):
        return 0.0
    return float(colour[sure][:, named].max(1).values.mean())


def choose(texts: list[str], shape: torch.Tensor, colour: torch.Tensor, foreground: list[int],
           colour_floor: float | None = None) -> int:
    """Index of the text of highest explain_score (+ colour_cover above `colour_floor` when given); the earliest
    on ties (texts[0] is the greedy one)."""
    def score(pairs):
        extra = 0.0 if colour_floor is None else colour_cover(pairs, colour, colour_floor)
        return explain_score(pairs, shape, colour, foreground) + extra

    scores = [score(subjects(t)[1]) for t in texts]
    return max(range(len(texts)), key=lambda k: (scores[k], -k))


def rerank(model, world, candidates: int = 8, temperature: float = 0.7, mask: str = "tokens", batch_size: int = 16,
           max_new_tokens: int = 128, sample_seed: int = 0, progress: bool = True, guided: bool = False,
           colour_floor: float | None = None, steer: bool | str = False):
    """(greedy descriptions, kept descriptions, how many scenes have a candidate naming every phrase), one per item
    of a `task="chair"` world; `sample_seed` seeds the sampled candidates. `guided`: every candidate is decoded
    writing no colour-shape pair twice (scripts/guided_descriptions.py, budget one); the greedy descriptions returned
    are then the guided greedy ones. `steer` (with `guided`): the guide takes the tokens' budgets and steers each
    subject's colour and shape to the tokens' pairs not yet written (budget tokens, steer all, or "strict" given
    steer="strict"), which needs a foreground the tokens can be trusted with (the background trained as a region).
    `colour_floor`: choose() also scores colour_cover above it."""
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    mode = "all" if steer is True else steer or "none"
    if mode not in ("none", "all", "strict"):
        raise ValueError(f"steer must be False, True (all) or 'strict', got {steer!r}")
    if steer and not guided:
        raise ValueError("steer shapes the guide's budgets: it needs guided")
    side = check_grid(model.prompts.tokens_per_image)
    word = model._region_word_ids  # the loss's own tokenisation of region words
    shape_ids, colour_ids = [word(s) for s in SHAPES], [word(c) for c in COLOR_NAMES]
    background_ids = word("background")
    embedding = model.lm.get_input_embeddings().weight
    gen = torch.Generator().manual_seed(sample_seed)
    greedy, kept, ceiling = [], [], 0
    with torch.no_grad():
        for lo in tqdm(range(0, len(world), batch_size), desc="rerank", disable=not progress):
            idx = list(range(lo, min(lo + batch_size, len(world))))
            rows = [world[i] for i in idx]
            images = [r["image"] for r in rows]
            prompts = [PROMPT] * len(rows)
            pixel_values, _, _ = model.image_inputs(images)  # one grid per image: main refuses AnyRes tiling
            tokens = model.image_embeddings(pixel_values)
            scores = [cell_scores(t, embedding, shape_ids, colour_ids, background_ids) for t in tokens]
            kw = {}
            if guided:  # budget one (no pair twice), or the tokens' budgets and steering
                budgets = [tokens_budget(sh, co, bg, side) if steer else Counter() for sh, co, bg in scores]
                kw["logits_processor"] = PairGuide(model.tokenizer, shape_ids, budgets, mode,
                                                   colour_ids if steer else None)
            drawn = [model.generate(images, prompts, max_new_tokens=max_new_tokens, **kw)]
            drawn += [model.generate(images, prompts, max_new_tokens=max_new_tokens, do_sample=True,
                                     temperature=temperature, generator=gen, **kw) for _ in range(candidates - 1)]
            for j, (i, row) in enumerate(zip(idx, rows)):
                shape, colour, background = scores[j]
                if mask == "boxes":
                    w, h = row["image"].size
                    fg = sorted({c for cs in object_cells(world.scene(i)["objects"], w, h, side) for c in cs})
                else:
                    fg = foreground_from_tokens(shape, background)
                texts = [d[j] for d in drawn]
                greedy.append(texts[0])
                kept.append(texts[choose(texts, shape, colour, fg, colour_floor)])
                ceiling += any(H.phrase_coverage([t], [row["phrases"]])["phrases_all_named"] == 1.0 for t in texts)
    return greedy, kept, ceiling


def report(objects: list[list[str]], phrases: list[list[str]], decodings: dict[str, list[str]]
           ) -> dict[str, dict[str, float]]:
    """Per decoding name (e.g. "greedy", "reranked"): CHAIR_i, recall, all_named, phrase_recall, phrases_all_named
    of its descriptions; objects and phrases one list per item, as the chair world's items give them."""
    vocabulary = chair_synonyms()
    out = {}
    for name, hyps in decodings.items():
        c = H.chair(hyps, objects, vocabulary)
        out[name] = {k: c[k] for k in ("CHAIR_i", "recall", "all_named")} | H.phrase_coverage(hyps, phrases)
    return out


def print_report(world, decodings: dict[str, list[str]]) -> list[list[str]]:
    """Print report()'s table for a chair world's items; returns their phrases, one list per item."""
    truth = [world[i] for i in range(len(world))]
    objects, phrases = [r["objects"] for r in truth], [r["phrases"] for r in truth]
    print("decoding   CHAIR_i  recall  all named  phrase recall  phrases all named")
    for name, m in report(objects, phrases, decodings).items():
        print(f"{name:<9} {m['CHAIR_i']:>8.4f} {m['recall']:>7.4f} {m['all_named']:>10.3f} {m['phrase_recall']:>14.4f} "
              f"{m['phrases_all_named']:>18.3f}")
    return phrases


def misses(phrases: list[list[str]], texts: list[str]) -> list[int]:
    """Indices of the items whose text leaves out one of their colour-shape phrases."""
    return [i for i, (t, p) in enumerate(zip(texts, phrases))
            if H.phrase_coverage([t], [p])["phrases_all_named"] < 1.0]


def touching(objects: list[dict], gap: int = 1) -> list[bool]:
    """Per object, whether its box comes within `gap` pixels of another object's box (touching or overlapping)."""
    def near(a, b):
        return a[0] <= b[2] + gap and b[0] <= a[2] + gap and a[1] <= b[3] + gap and b[1] <= a[3] + gap

    boxes = [o["box"] for o in objects]
    return [any(near(a, b) for j, b in enumerate(boxes) if j != i) for i, a in enumerate(boxes)]


def left_out_touching(scenes: list[list[dict]], texts: list[str]) -> tuple[int, int]:
    """(phrases left out, how many of them belong only to objects touching another), over scenes' objects (with
    colour, shape and box) and one text per scene."""
    left = near = 0
    for objects, text in zip(scenes, texts):
        close = touching(objects)
        for phrase in sorted({object_phrase(o) for o in objects}):
            if H.phrase_coverage([text], [[phrase]])["phrase_recall"] < 1.0:
                left += 1
                near += all(c for o, c in zip(objects, close) if object_phrase(o) == phrase)
    return left, near


def print_touching(world, decodings: dict[str, list[str]]) -> None:
    """How many of the phrases each decoding leaves out sit on objects touching another, against all objects."""
    scenes = [world.scene(i)["objects"] for i in range(len(world))]
    close = [c for objects in scenes for c in touching(objects)]
    print(f"objects touching another: {sum(close)} of {len(close)} ({sum(close) / len(close):.2f})")
    for name, texts in decodings.items():
        left, near = left_out_touching(scenes, texts)
        print(f"{name}: {left} phrases left out, {near} of them on objects touching another")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="heldout")
    ap.add_argument("--scenes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0, help="the world's seed (which scenes), as in --data seed=S")
    ap.add_argument("--candidates", type=int, default=8, help="greedy + this many - 1 sampled descriptions")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--mask", choices=MASKS, default="tokens")
    ap.add_argument("--guided", action="store_true", help="decode every candidate writing no colour-shape pair twice")
    ap.add_argument("--steer", nargs="?", const="all", choices=("all", "strict"), default=None,
                    help="with --guided: budgets from the tokens, and subjects steered to the tokens' pairs not yet "
                         "written (for a describer trained with the background as a region); --steer strict lets "
                         "only their colours follow a subject's size word")
    ap.add_argument("--colour-floor", type=float, default=None,
                    help="also score how well the named colours explain the cells whose best colour word's "
                         "log-probability is above this (e.g. -2.0); off by default")
    ap.add_argument("--show", type=int, default=0, help="print this many kept descriptions that miss a phrase")
    args = ap.parse_args(argv)
    if args.scenes < 1:
        ap.error(f"--scenes must be >= 1, got {args.scenes}")
    if args.candidates < 1:
        ap.error(f"--candidates must be >= 1, got {args.candidates}")
    if args.temperature <= 0:
        ap.error(f"--temperature must be > 0, got {args.temperature}")
    if args.steer and not args.guided:
        ap.error("--steer shapes the guide's budgets: it needs --guided")
    from modalign.data.shapes import ShapesWorld
    from modalign.models import load_model

    torch.set_num_threads(1)
    model = load_model(args.checkpoint).eval()
    if getattr(model, "fusion", None) != "prefix" or not getattr(model, "region_words", 0):
        ap.error(f"{args.checkpoint} is not a prefix-fusion model trained with region words: its tokens score no "
                 f"words")
    if model.tiler is not None:
        ap.error(f"{args.checkpoint} tiles images (AnyRes): the reranker needs one grid of tokens per image")
    world = ShapesWorld(task="chair", split=args.split, n=args.scenes, seed=args.seed)
    greedy, kept, ceiling = rerank(model, world, args.candidates, args.temperature, args.mask, guided=args.guided,
                                   colour_floor=args.colour_floor,
                                   steer=args.steer or False)
    print(f"{args.scenes} scenes, {args.candidates} candidates (T {args.temperature}), mask {args.mask}"
          f"{', guided' if args.guided else ''}{f' and steered ({args.steer})' if args.steer else ''}"
          f"{'' if args.colour_floor is None else f', colour floor {args.colour_floor:g}'}")
    phrases = print_report(world, {"greedy": greedy, "reranked": kept})
    changed = sum(a != b for a, b in zip(greedy, kept))
    print(f"some candidate names every phrase: {ceiling / len(world):.3f}; reranking changed {changed} descriptions")
    print_touching(world, {"greedy": greedy, "reranked": kept})
    for i in misses(phrases, kept)[:args.show]:
        print(f"\nscene {i}: {', '.join(phrases[i])}\n  kept: {kept[i]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
