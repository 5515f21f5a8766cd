"""scripts/guided_descriptions.py: budgets read off cells by hand, the shape slot of partial descriptions, the logits
processor's bans, and guided decoding of a stub describer that writes a same-coloured object's shape twice."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from test_rerank_descriptions_script import WORDS, _Describer, _scores

from modalign.data.shapes import ShapesWorld
from modalign.data.vocab import COLOR_NAMES, SHAPES

from script_loader import load_script

GUIDE = load_script("guided_descriptions")
RERANK = load_script("rerank_descriptions")
VOCAB = WORDS + ["there", "are", "some", "objects", ".", "a", "is", "here", "small", "large"]


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
    fg = RERANK.foreground_from_tokens(shape, background)
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


class _Repeater(_Describer):
    """Token by token, sentence k names object k's colour; its shape is the shape of the first earlier object of
    that colour, when there is one (a same-coloured shape written twice), with the object's own shape second."""

    def __init__(self, world, side):
        super().__init__(world, side)
        self.tokenizer = _Tokenizer()

    def generate(self, images, prompts, max_new_tokens=128, logits_processor=None):
        out = []
        for r, sc in enumerate(self._scenes(images)):
            plan = [("there", None), ("are", None), ("some", None), ("objects", None), (".", None)]
            for k, o in enumerate(sc["objects"]):
                first = next((p["shape"] for p in sc["objects"][:k] if p["color"] == o["color"]), o["shape"])
                plan += [("a", None), (o["color"], None), (first, o["shape"]), ("is", None), ("here", None),
                         (".", None)]
            row = []
            for top, second in plan:
                logits = torch.zeros(1, len(VOCAB))
                logits[0, VOCAB.index(top)] = 10.0
                if second is not None and second != top:
                    logits[0, VOCAB.index(second)] = 5.0
                if logits_processor is not None:
                    batch = torch.zeros(len(images), len(row), dtype=torch.long)
                    batch[r] = torch.tensor(row, dtype=torch.long)
                    big = logits.repeat(len(images), 1)
                    logits = logits_processor(batch, big)[r:r + 1]
                row.append(int(logits.argmax()))
            out.append(self.tokenizer.decode(row))
        return out


def _subjects(text):
    return Counter(RERANK.subjects(text)[1])


@pytest.mark.parametrize("budget", ["tokens", "one"])
def test_guide_names_the_same_coloured_objects_a_repeating_describer_skips(budget):
    n = 96
    world = ShapesWorld(task="chair", split="heldout", n=n)
    model = _Repeater(world, side=16)
    plain, guided, overruled = GUIDE.guide(model, world, budget=budget, batch_size=8, progress=False)
    truth = [world[i] for i in range(n)]
    objects, phrases = [r["objects"] for r in truth], [r["phrases"] for r in truth]
    scenes = [[(o["color"], o["shape"]) for o in world.scene(i)["objects"]] for i in range(n)]
    # per scene, the objects whose sentence the describer would give an earlier object's shape of their colour
    repeated = [sum(next(p for p in objs[:k + 1] if p[0] == o[0]) != o for k, o in enumerate(objs))
                for objs in scenes]
    repeats = [i for i in range(n) if repeated[i]]
    assert repeats and RERANK.misses(phrases, plain) == repeats
    m = RERANK.report(objects, phrases, {"greedy": plain, "guided": guided})
    assert m["guided"]["phrases_all_named"] == 1.0 and m["greedy"]["phrases_all_named"] < 1.0
    # a pair the scene holds twice (and no repeat): written twice only where the budget allows it
    twins = {i: p for i, objs in enumerate(scenes) for p, k in Counter(objs).items() if k > 1 and not repeated[i]}
    model, kinds = _Repeater(world, side=16), set()
    for i, pair in twins.items():
        shape, colour, background = _scores(model.image_embeddings(torch.tensor([i]))[0])
        apart = GUIDE.pair_budget(shape, colour, RERANK.foreground_from_tokens(shape, background), 16)[pair] == 2
        assert _subjects(plain[i])[pair] == 2
        assert _subjects(guided[i])[pair] == (2 if apart and budget == "tokens" else 1)
        kinds.add(apart)
    assert kinds == {True, False}  # twins apart (two groups of cells) and touching (one) both met
    budgets = []
    GUIDE.guide(_Repeater(world, side=16), world, budget=budget, batch_size=8, progress=False, budgets_out=budgets)
    assert len(budgets) == n and GUIDE.budget_errors(budgets, [world.scene(i) for i in range(n)]) == (
        (0, 0) if budget == "tokens" else (0, sum(len(set(objs)) for objs in scenes)))
    cut = [i for i, p in twins.items() if _subjects(guided[i])[p] == 1]
    changed = [i for i in range(n) if plain[i] != guided[i]]
    assert changed == sorted(set(repeats) | set(cut))
    if not any(Counter(scenes[i])[p] > 1 for i in repeats for p in scenes[i]):
        assert overruled == sum(repeated) + len(cut)


def test_guide_refuses_an_unknown_budget():
    world = ShapesWorld(task="chair", split="heldout", n=2)
    with pytest.raises(ValueError, match="budget"):
        GUIDE.guide(_Repeater(world, 4), world, budget="cells", progress=False)
    with pytest.raises(ValueError, match="repair"):
        GUIDE.guide(_Repeater(world, 4), world, repair="cells", progress=False)


def test_main_runs_on_a_saved_tiny_describer_and_refuses_what_it_cannot_guide(tmp_path, capsys):
    from test_vlm_tiny_parts import CORPUS, tiny_cfg

    from modalign.models.vlm import VisionLanguageModel

    torch.manual_seed(0)
    VisionLanguageModel.from_config(tiny_cfg().model_copy(update={"region_words": 0.5}),
                                    text_corpus=CORPUS).save_pretrained(tmp_path / "rw")
    args = ["--scenes", "3", "--budget", "tokens", "--steer", "all", "--show", "3"]
    assert GUIDE.main([str(tmp_path / "rw")] + args) == 0
    out = capsys.readouterr().out
    assert "3 scenes, budget tokens, steer all, repair lm" in out and "the tokens' budgets hold" in out
    assert out.count("\ngreedy ") == out.count("\nguided ") == 1
    VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).save_pretrained(tmp_path / "plain")
    assert GUIDE.main([str(tmp_path / "plain"), "--scenes", "2"]) == 0  # budget one: no region words needed
    assert "budget one, steer none, repair lm" in capsys.readouterr().out
    for bad, says in ((["--budget", "tokens"], "region words"), (["--repair", "tokens"], "region words"),
                      (["--steer", "shapes"], "--steer")):
        with pytest.raises(SystemExit):
            GUIDE.main([str(tmp_path / "plain")] + bad)
        assert says in capsys.readouterr().err


def test_steering_a_describer_that_gets_colours_right_names_what_the_budget_alone_does():
    n = 48
    world = ShapesWorld(task="chair", split="heldout", n=n)
    _, alone, _ = GUIDE.guide(_Repeater(world, side=16), world, budget="tokens", batch_size=8, progress=False)
    twins = {i for i in range(n) if len(set(world[i]["phrases"])) < len(world.scene(i)["objects"])}
    assert twins
    for steer in ("shapes", "all"):
        _, steered, _ = GUIDE.guide(_Repeater(world, side=16), world, budget="tokens", steer=steer, batch_size=8,
                                    progress=False)
        assert all(alone[i] == steered[i] for i in range(n) if i not in twins)


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


def test_budget_errors_by_hand():
    scenes = [{"objects": [{"color": "red", "shape": "star"}, {"color": "blue", "shape": "cross"}]},
              {"objects": [{"color": "red", "shape": "star"}]}]
    budgets = [Counter({("red", "star"): 2, ("green", "circle"): 1}), Counter({("red", "star"): 0})]
    assert GUIDE.budget_errors(budgets, scenes) == (1, 2)  # green circle extra; blue cross and the 0-budget star missed
