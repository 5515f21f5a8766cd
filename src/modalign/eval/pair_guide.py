"""Decoding guided by what a describer's visual tokens read: no colour-shape pair written beyond its budget.

For the shapes world's describers trained with region words (models/region_words.py), each visual token scores the
LM's words through its input embeddings, so the tokens can be read cell by cell (cell_scores) without annotation.
A describer's descriptions that leave an object out mostly write another object's colour and shape twice instead,
while its tokens still read the skipped object (docs/results/generative.md, thirteenth to twenty-second rounds).
PairGuide is a `generate(..., logits_processor=)` that, where a sentence's subject is about to get its shape,
forbids every shape whose pair with the subject's colour the description has written as often as its budget allows.

Budgets: "one" writes no pair twice and needs no region words; "tokens" reads them off the tokens: the foreground
cells (best shape word above "background") labelled with their best colour and shape word, a pair's budget its
number of 4-connected groups of cells. Steering (budget "tokens"): "shapes" also bans, after a subject's colour, the
shapes that lead away from the tokens' pairs of that colour not yet written; "all" steers the subject's colour that
way first (a token is banned when every colour word it would continue is); "strict" as "all", and right after a
subject's size word only those colours may come (a describer whose colour is banned otherwise escapes into a second
size word or a shape with no colour: "a large small square"); "complete" as "strict", and a description may not end
while a pair the tokens show on two cells or more is unwritten (a describer that counts one object short in its
opening otherwise stops a sentence early; a pair on one cell is mostly the seam between two objects). Repair: where
the LM's own shape is forbidden, "lm" lets it take its next best allowed shape, "tokens" the allowed shape whose pair
scores highest on some cell.
"""

from __future__ import annotations

import re
from collections import Counter

import torch
import torch.nn.functional as F

from ..data.vocab import COLOR_NAMES, SHAPES, SIZES
from ..models.region_words import check_grid

BUDGETS = ("tokens", "one")
STEERS = ("none", "shapes", "all", "strict", "complete")
_COLOUR_STEERS = ("all", "strict", "complete")
REPAIRS = ("lm", "tokens")
_WORD = re.compile(r"[a-z]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def word_scores(logp: torch.Tensor, words: list[list[int]]) -> torch.Tensor:
    """logp [..., V] -> [..., len(words)]: each word's mean log-probability over its token ids."""
    return torch.stack([logp[..., ids].mean(-1) for ids in words], -1)


def cell_scores(tokens: torch.Tensor, embedding: torch.Tensor, shape_ids: list[list[int]],
                colour_ids: list[list[int]], background_ids: list[int]):
    """tokens [M, D] -> (shape [M, len(SHAPES)], colour [M, len(COLOR_NAMES)], background [M]): each word's mean
    log-softmax over its token ids, per cell."""
    logp = F.log_softmax(tokens @ embedding.t(), dim=-1)                               # [M, V]
    return word_scores(logp, shape_ids), word_scores(logp, colour_ids), word_scores(logp, [background_ids])[:, 0]


def foreground_from_tokens(shape: torch.Tensor, background: torch.Tensor) -> list[int]:
    """Cells whose best shape word scores above the background word."""
    return torch.nonzero(shape.max(1).values > background).flatten().tolist()


def pair_budget(shape: torch.Tensor, colour: torch.Tensor, foreground: list[int], side: int) -> Counter:
    """Per (colour, shape) the number of 4-connected groups of foreground cells whose best words are that pair;
    shape [M, len(SHAPES)] and colour [M, len(COLOR_NAMES)] are per-cell word scores of a side x side grid."""
    label = {c: (COLOR_NAMES[int(colour[c].argmax())], SHAPES[int(shape[c].argmax())]) for c in foreground}
    groups, seen = Counter(), set()
    for start in label:
        if start in seen:
            continue
        groups[label[start]] += 1
        stack = [start]
        seen.add(start)
        while stack:
            c = stack.pop()
            y, x = divmod(c, side)
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                n = ny * side + nx
                if 0 <= ny < side and 0 <= nx < side and n not in seen and label.get(n) == label[c]:
                    seen.add(n)
                    stack.append(n)
    return groups


def tokens_budget(shape: torch.Tensor, colour: torch.Tensor, background: torch.Tensor, side: int) -> Counter:
    """pair_budget over the tokens' own foreground (cells whose best shape word scores above "background")."""
    return pair_budget(shape, colour, foreground_from_tokens(shape, background), side)


def pair_evidence(shape: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """[len(COLOR_NAMES), len(SHAPES)]: per pair, its best cell's colour + shape word score."""
    return (colour[:, :, None] + shape[:, None, :]).max(0).values


def subject_slot(text: str) -> tuple[str | None, str | None, Counter]:
    """(slot, colour, the (colour, shape) subjects written so far) for a partial description: sentences after the
    opening, each subject its first colour and first shape word (as scripts/caption_errors.py reads them). The slot
    is "shape" when the last sentence has no shape yet and ends on a colour word (no space after it: the next word is
    still to come), the colour given; "colour" when the last sentence has neither; None otherwise."""
    sentences = [s for s in _SENTENCE_END.split(text.lower()) if s]
    written = Counter()
    for s in sentences[1:]:
        words = _WORD.findall(s)
        shape = next((w for w in words if w in SHAPES), None)
        if shape is not None:
            written[(next((w for w in words if w in COLOR_NAMES), None), shape)] += 1
    if len(sentences) < 2:
        return None, None, written
    words = _WORD.findall(sentences[-1])
    if any(w in SHAPES for w in words):
        return None, None, written
    if not any(w in COLOR_NAMES for w in words):
        return "colour", None, written
    if text[-1].isalpha() and words[-1] in COLOR_NAMES:
        return "shape", words[-1], written
    return None, None, written


def after_size(text: str) -> bool:
    """Whether a partial description ends on the size word of a subject whose colour is still to come: a sentence
    after the opening with no colour or shape word yet, its last word a size, no space after it."""
    sentences = [s for s in _SENTENCE_END.split(text.lower()) if s]
    if len(sentences) < 2 or not text[-1].isalpha():
        return False
    words = _WORD.findall(sentences[-1])
    return bool(words) and words[-1] in SIZES and not any(w in COLOR_NAMES or w in SHAPES for w in words)


def pair_cells(shape: torch.Tensor, colour: torch.Tensor, foreground: list[int]) -> Counter:
    """Per (colour, shape) the number of foreground cells whose best words are that pair."""
    return Counter((COLOR_NAMES[int(colour[c].argmax())], SHAPES[int(shape[c].argmax())]) for c in foreground)


def owed(written: Counter, budget: Counter) -> list[tuple[str, str]]:
    """The budget's pairs not written yet."""
    return [p for p, k in budget.items() if k > 0 and not written[p]]


def allowed_shapes(colour: str, written: Counter, budget: Counter, steer: bool) -> list[str]:
    """The shapes that may follow `colour`: those whose pair is under its budget (at least 1 for a pair the budget
    does not hold); with `steer`, only the owed pairs' shapes of that colour, when there are any."""
    under = [s for s in SHAPES if written[(colour, s)] < max(budget[(colour, s)], 1)]
    if steer:
        due = {s for c, s in owed(written, budget) if c == colour}
        return [s for s in under if s in due] or under
    return under


def allowed_colours(written: Counter, budget: Counter) -> list[str]:
    """The colours a subject may take when steering: those of the owed pairs, or every colour when none is owed."""
    due = {c for c, _ in owed(written, budget)}
    return [c for c in COLOR_NAMES if c in due] or list(COLOR_NAMES)


class PairGuide:
    """logits_processor for `generate`: row r writes each colour-shape pair at most budgets[r][pair] times (at
    least once); `steer` "shapes": a subject's shape goes to a pair of its colour the budget holds and the row has
    not written, when there is one; "all": its colour goes to such a pair first, while there is one; "strict": as
    "all", and right after a subject's size word only those colours' tokens may come; "complete": as "strict", and
    after a sentence's end no token of `stop_ids` may come while a pair `cells` (pair_cells per row) shows on two
    cells or more is unwritten. After a subject's colour only the tokens of the allowed shapes may come (a describer
    kept from repeating a pair otherwise escapes into words that are no shape); words may take several tokens, and
    while one is being written only tokens continuing an allowed word may come. Before a steered colour, a token is
    banned when every colour word it would continue is (a token that continues none is left alone). `evidence`
    (pair_evidence per row): where the LM's own shape is forbidden, the allowed shape the tokens score highest is
    taken."""

    def __init__(self, tokenizer, shape_ids: list[list[int]], budgets: list[Counter], steer: str = "none",
                 colour_ids: list[list[int]] | None = None, evidence: list[torch.Tensor] | None = None,
                 cells: list[Counter] | None = None, stop_ids: list[int] | None = None):
        if steer not in STEERS:
            raise ValueError(f"steer must be one of {STEERS}, got {steer!r}")
        if steer in _COLOUR_STEERS and colour_ids is None:
            raise ValueError("steering colours bans colour words: give colour_ids")
        if steer == "complete" and (cells is None or not stop_ids):
            raise ValueError("keeping a description from ending needs the tokens' cells and the stop ids: give cells "
                             "and stop_ids")
        self.tokenizer, self.budgets, self.steer, self.evidence = tokenizer, budgets, steer, evidence
        self.cells, self.stop = cells, sorted(stop_ids or [])
        self.ids = {"shape": dict(zip(SHAPES, shape_ids)), "colour": dict(zip(COLOR_NAMES, colour_ids or []))}
        self.longest = max(len(ids) for words in self.ids.values() for ids in words.values())
        self.bans = 0

    def _slot(self, row: list[int]):
        """(slot, colour, pairs written, the slot word's tokens written so far, whether only the slot's allowed words
        may come) when row is at a subject's shape (or, steering, its colour), else None; the longest partial word
        wins."""
        for t in range(min(self.longest - 1, len(row)), -1, -1):
            head, typed = row[:len(row) - t], row[len(row) - t:]
            text = self.tokenizer.decode(head, skip_special_tokens=True)
            slot, colour, written = subject_slot(text)
            if slot is None or (slot == "colour" and self.steer not in _COLOUR_STEERS):
                continue
            if not typed or any(len(ids) > t and ids[:t] == typed for ids in self.ids[slot].values()):
                only = slot == "shape" or (self.steer in ("strict", "complete") and after_size(text))
                return slot, colour, written, typed, only
        return None

    def _keep_going(self, r: int, row: list[int], logits: torch.Tensor) -> None:
        """Ban row r's stop tokens after a sentence's end while a pair on two cells or more is unwritten."""
        if any(t in self.stop for t in row):  # ended already: what comes next is padding
            return
        text = self.tokenizer.decode(row, skip_special_tokens=True).rstrip()
        if not text.endswith("."):
            return
        written = subject_slot(text)[2]
        if any(self.cells[r][p] >= 2 for p in owed(written, self.budgets[r])):
            self.bans += int(logits[r].argmax()) in self.stop
            logits[r, self.stop] = float("-inf")

    def __call__(self, generated: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.clone()
        for r, row in enumerate(generated.tolist()):
            if self.steer == "complete":
                self._keep_going(r, row, logits)
            found = self._slot(row)
            if found is None:
                continue
            slot, colour, written, typed, only = found
            if slot == "shape":
                keep = set(allowed_shapes(colour, written, self.budgets[r], self.steer != "none"))
            else:
                keep = set(allowed_colours(written, self.budgets[r]))
            ok, off = set(), set()
            for word, ids in self.ids[slot].items():
                if len(ids) > len(typed) and ids[:len(typed)] == typed:
                    (ok if word in keep else off).add(ids[len(typed)])
            if only and ok:  # a subject's shape (or, after its size, colour) comes next, and only an allowed one
                overruled = int(logits[r].argmax()) not in ok
                if slot == "shape" and overruled and self.evidence is not None and not typed:  # the tokens pick
                    c = COLOR_NAMES.index(colour)
                    best = max(sorted(keep, key=SHAPES.index),
                               key=lambda w: float(self.evidence[r][c, SHAPES.index(w)]))
                    ok = {self.ids["shape"][best][0]}
                keep_ids = torch.tensor(sorted(ok), dtype=torch.long)
                self.bans += overruled
                row_logits = torch.full_like(logits[r], float("-inf"))
                row_logits[keep_ids] = logits[r, keep_ids]
                logits[r] = row_logits
                continue
            banned = sorted(off - ok)
            if banned and int(logits[r].argmax()) in banned:
                self.bans += 1  # the greedy pick would have broken the budget
            logits[r, banned] = float("-inf")
        return logits


def check_guide(model, budget: str, steer: str = "none", repair: str = "lm") -> None:
    """ValueError naming what to change when `model` cannot be guided this way."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    if steer not in STEERS:
        raise ValueError(f"steer must be one of {STEERS}, got {steer!r}")
    if repair not in REPAIRS:
        raise ValueError(f"repair must be one of {REPAIRS}, got {repair!r}")
    if steer != "none" and budget != "tokens":
        raise ValueError(f"steer {steer!r} prefers the tokens' pairs: it needs budget 'tokens'")
    if getattr(model, "fusion", None) != "prefix":
        raise ValueError("guided decoding needs a prefix-fusion vision-language model (a grid of visual tokens)")
    if "tokens" in (budget, repair) and not getattr(model, "region_words", 0):
        raise ValueError("this model was not trained with region words: its tokens give no budget and pick no "
                         "shape (use budget 'one' and repair 'lm')")
    if getattr(model, "tiler", None) is not None:
        raise ValueError("this model tiles images (AnyRes): the tokens' budget needs one grid of tokens per image")


def guide_for(model, images: list, budget: str = "one", steer: str = "none", repair: str = "lm") -> PairGuide:
    """The PairGuide for one batch of images (its budgets in `.budgets`); check_guide's conditions hold."""
    word = model._region_word_ids  # the region-word loss's own tokenisation
    shape_ids, colour_ids = [word(s) for s in SHAPES], [word(c) for c in COLOR_NAMES]
    budgets = [Counter() for _ in images]
    # each read only where it is used: evidence by the tokens' repair, cells by "complete" steering
    evidence = [] if repair == "tokens" else None
    cells = [] if steer == "complete" else None
    if "tokens" in (budget, repair):
        side = check_grid(model.prompts.tokens_per_image)
        background_ids = word("background")
        embedding = model.lm.get_input_embeddings().weight
        pixel_values, _, _ = model.image_inputs(images)  # one grid per image: check_guide refuses AnyRes tiling
        with torch.no_grad():
            for j, toks in enumerate(model.image_embeddings(pixel_values)):
                shape, colour, background = cell_scores(toks, embedding, shape_ids, colour_ids, background_ids)
                foreground = foreground_from_tokens(shape, background)
                if budget == "tokens":
                    budgets[j] = pair_budget(shape, colour, foreground, side)
                if evidence is not None:
                    evidence.append(pair_evidence(shape, colour))
                if cells is not None:
                    cells.append(pair_cells(shape, colour, foreground))
    stop_ids = model.stop_token_ids() if steer == "complete" else None
    return PairGuide(model.tokenizer, shape_ids, budgets, steer, colour_ids, evidence, cells, stop_ids)


__all__ = ["BUDGETS", "STEERS", "REPAIRS", "PairGuide", "cell_scores", "foreground_from_tokens", "pair_budget",
           "tokens_budget", "pair_evidence", "subject_slot", "after_size", "owed", "allowed_shapes",
           "allowed_colours", "check_guide", "guide_for", "word_scores", "pair_cells"]
