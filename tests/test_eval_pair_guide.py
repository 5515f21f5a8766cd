"""modalign.eval.pair_guide: budgets read off cells by hand, the subject slots of partial descriptions, and the
logits processor's bans and steering on one-token-per-word stubs."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from test_rerank_descriptions_script import WORDS, _scores

from modalign.data.vocab import COLOR_NAMES, SHAPES
from modalign.eval import pair_guide as GUIDE

VOCAB = WORDS + ["there", "are", "some", "objects", ".", "a", "is", "here", "small", "large", "<end>"]


class _Tokenizer:
    """One token per word of VOCAB; "." sticks to the word before it."""

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(VOCAB[i] for i in ids).replace(" .", ".")


def _hot(side, cells):
    """Per-cell scores of a side x side grid: {cell: (colour, shape)}, the rest background."""
    tokens = torch.zeros(side * side, len(WORDS))
    tokens[:, WORDS.index("background")] = 5.0
    for c, (colour, shape) in cells.items():
        tokens[c] = 0.0
        tokens[c, WORDS.index(colour)] = tokens[c, WORDS.index(shape)] = 5.0
    return _scores(tokens)


def test_pair_budget_counts_four_connected_groups_by_hand():
    # 4 x 4: a red star at cells 0, 1, 4 (one group), another at 15, a blue cross at 5 (touching the first star's
    # group, which stays one), and a red star at 10 only diagonal to 15: three red-star groups
    shape, colour, background = _hot(4, {0: ("red", "star"), 1: ("red", "star"), 4: ("red", "star"),
                                         5: ("blue", "cross"), 15: ("red", "star"), 10: ("red", "star")})
    fg = GUIDE.foreground_from_tokens(shape, background)
    assert fg == [0, 1, 4, 5, 10, 15]
    assert GUIDE.pair_budget(shape, colour, fg, 4) == Counter({("red", "star"): 3, ("blue", "cross"): 1})
    assert GUIDE.pair_budget(shape, colour, [], 4) == Counter()


def test_subject_slot_opens_before_a_subject_colour_and_after_it():
    opening = "There are three objects on a plain grey background."
    assert GUIDE.subject_slot(opening) == (None, None, Counter())
    assert GUIDE.subject_slot("There are two red")[0] is None  # the opening names no subject
    said = opening + " At the top is a large red star, above the blue cross. On the left is a small red"
    slot, colour, written = GUIDE.subject_slot(said)
    assert (slot, colour) == ("shape", "red") and written == Counter({("red", "star"): 1})
    assert GUIDE.subject_slot(said + " ")[0] is None  # no colour word ends the text: the slot needs one right before
    assert GUIDE.subject_slot(said + " star")[2] == Counter({("red", "star"): 2})
    # the neighbour's colour in a sentence whose subject has its shape is no slot; before the subject's colour is
    assert GUIDE.subject_slot(opening + " At the top is a large red star, above the blue")[0] is None
    assert GUIDE.subject_slot(opening + " At the top is a large")[:2] == ("colour", None)
    assert GUIDE.subject_slot(opening + " At")[:2] == ("colour", None)
    assert GUIDE.subject_slot(opening + " At the top is a large red star.")[0] is None


def test_allowed_shapes_and_colours_by_budget_and_steer():
    written = Counter({("red", "star"): 1, ("red", "cross"): 1})
    budget = Counter({("red", "star"): 2, ("red", "cross"): 1, ("red", "circle"): 1, ("blue", "square"): 1})
    under = GUIDE.allowed_shapes("red", written, budget, steer=False)
    assert "cross" not in under and "star" in under and set(under) == set(SHAPES) - {"cross"}
    assert GUIDE.owed(written, budget) == [("red", "circle"), ("blue", "square")]  # not written at all
    assert GUIDE.allowed_shapes("red", written, budget, steer=True) == ["circle"]
    assert GUIDE.allowed_colours(written, budget) == sorted(["red", "blue"], key=COLOR_NAMES.index)
    done = written + Counter({("red", "circle"): 1, ("blue", "square"): 1})
    # nothing owed any more: steering falls back to every pair under its budget (at least 1), and every colour
    assert GUIDE.allowed_shapes("red", done, budget, steer=True) == GUIDE.allowed_shapes("red", done, budget, False)
    assert "star" in GUIDE.allowed_shapes("red", done, budget, False)  # the tokens show two red stars
    assert GUIDE.allowed_colours(done, budget) == COLOR_NAMES


def test_pair_guide_bans_the_exhausted_shapes_of_the_slot_colour_per_row():
    ids = [[VOCAB.index(s)] for s in SHAPES]
    row0 = _row("there are some objects. a red star is here. a red")
    row1 = row0[:-1] + [VOCAB.index("blue")]
    guide = GUIDE.PairGuide(_Tokenizer(), ids, [Counter(), Counter({("red", "star"): 2})])
    logits = torch.zeros(2, len(VOCAB))
    logits[:, VOCAB.index("star")] = 3.0
    out = guide(torch.tensor([row0, row0]), logits)
    assert out[0, VOCAB.index("star")] == float("-inf")  # written once, budget (at least) 1
    assert out[1, VOCAB.index("star")] == 3.0  # the tokens show two red stars
    assert guide.bans == 1 and torch.isfinite(out[0, VOCAB.index("circle")])
    out = guide(torch.tensor([row1, row1]), logits)  # a blue subject: its star is not written yet
    shape_ids = [VOCAB.index(s) for s in SHAPES]
    assert torch.equal(out[:, shape_ids], logits[:, shape_ids]) and guide.bans == 1
    # after a subject's colour only a shape may come: a describer kept from its pair cannot escape into other words
    assert (out[:, [VOCAB.index(w) for w in VOCAB if w not in SHAPES]] == float("-inf")).all()


def _row(text):
    out = []
    for w in text.split():
        out.append(VOCAB.index(w.rstrip(".")))
        if w.endswith("."):
            out.append(VOCAB.index("."))
    return out


def test_pair_guide_steers_the_subject_colour_then_shape_to_the_pairs_not_written():
    shapes, colours = [[VOCAB.index(s)] for s in SHAPES], [[VOCAB.index(c)] for c in COLOR_NAMES]
    budget = Counter({("red", "star"): 1, ("blue", "cross"): 1})
    guide = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="all", colour_ids=colours)
    logits = torch.zeros(1, len(VOCAB))
    logits[0, VOCAB.index("red")] = 3.0
    out = guide(torch.tensor([_row("there are some objects. a red star is here. a")]), logits)
    assert [c for c in COLOR_NAMES if torch.isfinite(out[0, VOCAB.index(c)])] == ["blue"]
    assert torch.isfinite(out[0, VOCAB.index("is")]) and guide.bans == 1  # only colour words are banned
    out = guide(torch.tensor([_row("there are some objects. a red star is here. a blue")]), logits)
    assert [s for s in SHAPES if torch.isfinite(out[0, VOCAB.index(s)])] == ["cross"]
    # all written: no steering at all
    out = guide(torch.tensor([_row("there are some objects. a red star is here. a blue cross is here. a")]), logits)
    assert torch.equal(out, logits)
    # steering shapes only leaves the colour alone
    only = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="shapes")
    assert torch.equal(only(torch.tensor([_row("there are some objects. a red star is here. a")]), logits), logits)
    with pytest.raises(ValueError, match="colour_ids"):
        GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="all")
    with pytest.raises(ValueError, match="steer"):
        GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer=True)


def test_after_size_is_a_subject_size_word_with_its_colour_still_to_come():
    opening = "There are three objects on a plain grey background."
    assert GUIDE.after_size(opening + " At the top is a large")
    assert GUIDE.after_size(opening + " At the top is a red star. Below it is a small")
    assert not GUIDE.after_size(opening + " At the top is a large ")  # the next word has begun
    assert not GUIDE.after_size("There are two small")  # the opening names no subject
    assert not GUIDE.after_size(opening + " At the top is a red large")  # the subject has its colour
    assert not GUIDE.after_size(opening + " A star, small")  # and here its shape
    assert not GUIDE.after_size(opening + " At the top is a")


def test_strict_steering_lets_only_the_owed_colours_follow_a_subject_size_word():
    shapes, colours = [[VOCAB.index(s)] for s in SHAPES], [[VOCAB.index(c)] for c in COLOR_NAMES]
    budget = Counter({("red", "star"): 1, ("blue", "cross"): 1})
    logits = torch.zeros(1, len(VOCAB))
    logits[0, VOCAB.index("small")], logits[0, VOCAB.index("red")] = 4.0, 3.0
    row = torch.tensor([_row("there are some objects. a red star is here. a large")])
    soft = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="all", colour_ids=colours)
    # steering alone bans the red it is not owed, and the describer escapes into a second size word
    assert int(soft(row, logits).argmax()) == VOCAB.index("small")
    strict = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="strict", colour_ids=colours)
    out = strict(row, logits)
    assert [w for w in VOCAB if torch.isfinite(out[0, VOCAB.index(w)])] == ["blue"] and strict.bans == 1
    # before the size word, strict steers as "all" does: only colour words are banned
    before = torch.tensor([_row("there are some objects. a red star is here. a")])
    assert torch.equal(strict(before, logits), soft(before, logits))
    done = torch.tensor([_row("there are some objects. a red star is here. a blue cross is here. a large")])
    # nothing owed: any colour may follow the size word, but a colour it is
    out = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="strict", colour_ids=colours)(done, logits)
    assert {w for w in VOCAB if torch.isfinite(out[0, VOCAB.index(w)])} == set(COLOR_NAMES)
    with pytest.raises(ValueError, match="colour_ids"):
        GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="strict")


def test_pair_cells_by_hand():
    shape, colour, background = _hot(3, {0: ("red", "star"), 1: ("red", "star"), 8: ("blue", "cross")})
    cells = GUIDE.pair_cells(shape, colour, GUIDE.foreground_from_tokens(shape, background))
    assert cells == Counter({("red", "star"): 2, ("blue", "cross"): 1})


def test_complete_steering_keeps_a_description_going_while_a_pair_on_two_cells_is_unwritten():
    shapes, colours = [[VOCAB.index(s)] for s in SHAPES], [[VOCAB.index(c)] for c in COLOR_NAMES]
    end = VOCAB.index("<end>")
    budget = Counter({("red", "star"): 1, ("blue", "cross"): 1})
    logits = torch.zeros(1, len(VOCAB))
    logits[0, end] = 5.0
    said = _row("there are some objects. a red star is here.")

    def run(cells, row):
        g = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="complete", colour_ids=colours, cells=[cells],
                            stop_ids=[end])
        return g, g(torch.tensor([row]), logits)

    g, out = run(Counter({("red", "star"): 3, ("blue", "cross"): 2}), said)
    assert out[0, end] == float("-inf") and g.bans == 1  # the blue cross, on two cells, is still to come
    assert int(out.argmax()) != end
    _, out = run(Counter({("red", "star"): 3, ("blue", "cross"): 1}), said)
    assert torch.equal(out, logits)  # on one cell only: the describer may end
    _, out = run(Counter({("red", "star"): 3, ("blue", "cross"): 2}), said + _row("a blue cross is here."))
    assert torch.equal(out, logits)  # everything written
    _, out = run(Counter({("red", "star"): 3, ("blue", "cross"): 2}), said[:-1])
    assert out[0, end] == 5.0  # mid-sentence: not the guide's business
    _, out = run(Counter({("red", "star"): 3, ("blue", "cross"): 2}), said + [end])
    assert out[0, end] == 5.0  # ended already
    strict = GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="strict", colour_ids=colours)
    assert torch.equal(strict(torch.tensor([said]), logits), logits)  # strict alone lets it end
    with pytest.raises(ValueError, match="stop_ids"):
        GUIDE.PairGuide(_Tokenizer(), shapes, [budget], steer="complete", colour_ids=colours, cells=[Counter()])


class _Pieces:
    """Tokens that carry their own spaces: " st" + "ar" is " star"."""

    PIECES = [" there are two objects.", " a", " red", " st", "ar", "uare", " circle", " is here."]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.PIECES[i] for i in ids)


def test_pair_guide_bans_a_shape_of_several_tokens_only_where_it_parts_from_the_allowed_ones():
    p = _Pieces.PIECES.index
    ids = [[p(" circle")] if s == "circle" else [p(" st"), p("ar")] if s == "star" else
           [p(" st"), p("uare")] if s == "square" else [100 + k] for k, s in enumerate(SHAPES)]
    guide = GUIDE.PairGuide(_Pieces(), ids, [Counter()])
    row = [p(" there are two objects."), p(" a"), p(" red"), p(" st"), p("ar"), p(" is here."), p(" a"), p(" red")]
    logits = torch.zeros(1, 110)
    out = guide(torch.tensor([row]), logits)
    assert torch.isfinite(out[0, p(" st")])  # " st" also begins the square, which is still allowed
    out = guide(torch.tensor([row + [p(" st")]]), logits)
    assert out[0, p("ar")] == float("-inf") and torch.isfinite(out[0, p("uare")])
    # a token that continues no shape word is not the guide's business
    assert torch.equal(guide(torch.tensor([row + [p(" is here.")]]), logits), logits)


def test_repair_by_the_tokens_picks_their_best_allowed_shape_only_where_the_lm_pick_is_forbidden():
    shape, colour, _ = _hot(2, {0: ("red", "star"), 3: ("red", "cross")})
    ev = GUIDE.pair_evidence(shape, colour)
    assert ev.shape == (len(COLOR_NAMES), len(SHAPES))
    red = COLOR_NAMES.index("red")
    best = float(shape[0, SHAPES.index("star")] + colour[0, red])  # by hand: the star's own cell
    assert float(ev[red, SHAPES.index("star")]) == pytest.approx(best)
    assert float(ev[red, SHAPES.index("cross")]) == pytest.approx(best)
    assert float(ev[red, SHAPES.index("circle")]) < best
    shapes = [[VOCAB.index(s)] for s in SHAPES]
    guide = GUIDE.PairGuide(_Tokenizer(), shapes, [Counter()], evidence=[ev])
    logits = torch.zeros(1, len(VOCAB))
    logits[0, VOCAB.index("star")], logits[0, VOCAB.index("circle")] = 3.0, 2.0
    out = guide(torch.tensor([_row("there are some objects. a red star is here. a red")]), logits)
    # the LM's star is written already; its next best (circle) is not what the tokens hold: the cross is
    assert [s for s in SHAPES if torch.isfinite(out[0, VOCAB.index(s)])] == ["cross"]
    out = guide(torch.tensor([_row("there are some objects. a red")]), logits)
    assert int(out.argmax()) == VOCAB.index("star")  # allowed: the LM's own pick stands
