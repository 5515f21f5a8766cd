"""scripts/rerank_descriptions.py: candidates scored against the tokens' words by hand, and the reranker on a stub
describer whose greedy description names only the first object and whose samples name them all."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from modalign.data.shapes import ShapesWorld
from modalign.data.vocab import COLOR_NAMES, SHAPES
from modalign.eval.pair_guide import pair_budget

from script_loader import load_script

WORDS = SHAPES + COLOR_NAMES + ["background"]  # one token per word, embedded one-hot
RERANK = load_script("rerank_descriptions")
READOUT = load_script("region_readout")


def _ids(word: str) -> list[int]:
    return [WORDS.index(word.strip())]


def _scores(tokens):
    return RERANK.cell_scores(tokens, torch.eye(len(WORDS)), [_ids(s) for s in SHAPES],
                              [_ids(c) for c in COLOR_NAMES], _ids("background"))


def _cells(*hot: tuple[str, ...]) -> torch.Tensor:
    tokens = torch.zeros(len(hot), len(WORDS))
    for cell, words in enumerate(hot):
        for w in words:
            tokens[cell, WORDS.index(w)] = 5.0
    return tokens


def test_cell_scores_and_foreground_by_hand():
    shape, colour, background = _scores(_cells(("red", "star"), ("background",), ("blue", "cross")))
    assert shape.shape == (3, len(SHAPES)) and colour.shape == (3, len(COLOR_NAMES)) and background.shape == (3,)
    # log-softmax over the vocabulary: the hot words of a cell share one log-probability
    z = torch.log(torch.tensor(2 * torch.e ** 5 + len(WORDS) - 2))
    assert float(shape[0, SHAPES.index("star")]) == pytest.approx(5 - float(z), abs=1e-5)
    assert float(colour[0, COLOR_NAMES.index("red")]) == pytest.approx(5 - float(z), abs=1e-5)
    assert RERANK.foreground_from_tokens(shape, background) == [0, 2]


def test_explain_score_by_hand():
    shape, colour, background = _scores(_cells(("red", "star"), ("background",), ("blue", "cross")))
    fg = [0, 2]
    hit = float(shape[0, SHAPES.index("star")] + colour[0, COLOR_NAMES.index("red")])    # a cell's own pair
    miss = float(shape[0, SHAPES.index("cross")] + colour[0, COLOR_NAMES.index("blue")])  # another cell's pair
    # both pairs named: each cell explained by its own, each pair supported by its own cell
    both = RERANK.explain_score([("red", "star"), ("blue", "cross")], shape, colour, fg)
    assert both == pytest.approx(2 * hit, abs=1e-5)
    # the cross skipped: its cell is explained only by the star pair; the star is still supported
    one = RERANK.explain_score([("red", "star")], shape, colour, fg)
    assert one == pytest.approx((hit + miss) / 2 + hit, abs=1e-5)
    # an invented green circle lowers support, not coverage
    extra = RERANK.explain_score([("red", "star"), ("blue", "cross"), ("green", "circle")], shape, colour, fg)
    assert both > extra > one
    # a pair named without a colour takes each cell's best colour
    assert RERANK.explain_score([(None, "star"), ("blue", "cross")], shape, colour, fg) == pytest.approx(both)
    assert RERANK.explain_score([], shape, colour, fg) == float("-inf")
    assert RERANK.explain_score([("red", "star")], shape, colour, []) == float("-inf")


def test_choose_prefers_the_description_that_names_everything_and_the_greedy_one_on_ties():
    shape, colour, background = _scores(_cells(("red", "star"), ("background",), ("blue", "cross")))
    fg = [0, 2]
    skip = "There are two objects. A red star is here."
    full = "There are two objects. A red star is here. A blue cross is there."
    assert RERANK.choose([skip, full, skip], shape, colour, fg) == 1
    assert RERANK.choose([full, full.replace("there", "below")], shape, colour, fg) == 0


def test_colour_cover_by_hand_and_its_vote_in_choose():
    # a green circle the tokens read as a green cross (shape unsure), beside a purple square, and a cell of the
    # tokens' foreground that weakly reads a purple cross
    tokens = _cells(("purple", "square"), ("green",), ())
    tokens[1, WORDS.index("cross")] = 2.0
    tokens[2, WORDS.index("purple")] = tokens[2, WORDS.index("cross")] = 2.0
    shape, colour, background = _scores(tokens)
    fg = [0, 1, 2]
    sure = colour.max(1).values
    floor = float(sure[2]) + 0.1                      # the weak cell is not sure of its colour
    assert float(sure[0]) > floor and float(sure[1]) > floor
    purple, green = COLOR_NAMES.index("purple"), COLOR_NAMES.index("green")
    both = (float(colour[0, purple]) + float(colour[1, green])) / 2
    assert RERANK.colour_cover([("purple", "square"), ("green", "circle")], colour, floor) == pytest.approx(both)
    only = (float(colour[0, purple]) + float(colour[1, purple])) / 2
    assert RERANK.colour_cover([("purple", "square"), ("purple", "cross")], colour, floor) == pytest.approx(only)
    assert RERANK.colour_cover([(None, "square")], colour, floor) == float("-inf")
    assert RERANK.colour_cover([("purple", "square")], colour, 100.0) == 0.0
    # the shape scores favour a second purple object shaped like the unsure cell; the colours do not
    right = "There are two objects. A purple square is here. A green circle is there."
    wrong = "There are two objects. A purple square is here. A purple cross is there."
    assert RERANK.choose([wrong, right], shape, colour, fg) == 0
    assert RERANK.choose([wrong, right], shape, colour, fg, colour_floor=floor) == 1


def test_touching_and_the_phrases_left_out_on_touching_objects_by_hand():
    red = {"color": "red", "shape": "star", "box": [0, 0, 9, 9]}
    blue = {"color": "blue", "shape": "cross", "box": [10, 2, 20, 8]}      # one pixel right of the star: touching
    far = {"color": "green", "shape": "circle", "box": [40, 40, 50, 50]}
    gap2 = {"color": "red", "shape": "star", "box": [52, 40, 60, 50]}      # two pixels right of the circle
    assert RERANK.touching([red, blue, far]) == [True, True, False]
    assert RERANK.touching([far, gap2]) == [False, False]
    assert RERANK.touching([far, gap2], gap=2) == [True, True]
    scenes = [[red, blue, far], [red, blue, far], [far, gap2]]
    texts = ["A red star and a green circle.",            # the blue cross (touching) left out
             "A blue cross.",                              # the red star (touching) and the green circle (not)
             "A green circle."]                            # the red star far from the circle
    assert RERANK.left_out_touching(scenes, texts) == (4, 2)
    # a phrase two objects share counts as touching only when every one of them touches another
    assert RERANK.left_out_touching([[red, blue, gap2]], ["A blue cross."]) == (1, 0)


class _Describer:
    """Tokens holding every object's words (the background word off objects); the greedy description names the
    first object only, sampled ones name them all."""

    def __init__(self, world, side: int):
        self.world, self.side = world, side
        self._index = {world[i]["image"].tobytes(): i for i in range(len(world))}  # which scene an image shows
        self.prompts = SimpleNamespace(tokens_per_image=side * side)
        self._region_word_ids = _ids
        self.tokenizer = None  # the guide's business; spied on where it matters
        emb = torch.eye(len(WORDS))
        self.lm = SimpleNamespace(get_input_embeddings=lambda: SimpleNamespace(weight=emb))

    def _scenes(self, images):
        return [self.world.scene(self._index[im.tobytes()]) for im in images]

    def generate(self, images, prompts, max_new_tokens=128, do_sample=False, temperature=1.0, generator=None,
                 logits_processor=None):
        out = []
        for sc in self._scenes(images):
            objs = sc["objects"] if do_sample else sc["objects"][:1]
            out.append("There are some objects. " + " ".join(f"A {o['color']} {o['shape']} is here." for o in objs))
        return out

    def image_inputs(self, images):
        idx = torch.tensor([self._index[im.tobytes()] for im in images])
        return idx, [self.side * self.side] * len(images), None

    def image_embeddings(self, idx):
        out = torch.zeros(len(idx), self.side * self.side, len(WORDS))
        out[:, :, WORDS.index("background")] = 6.0
        for row, i in enumerate(idx.tolist()):
            scene = self.world.scene(i)
            size = self.world.image_size
            for o, cs in zip(scene["objects"], READOUT.object_cells(scene["objects"], size, size, self.side)):
                for c in cs:
                    out[row, c] = 0.0
                    out[row, c, WORDS.index(o["shape"])] = out[row, c, WORDS.index(o["color"])] = 6.0
        return out


@pytest.mark.parametrize("mask", ["tokens", "boxes"])
def test_rerank_keeps_the_candidates_that_name_every_object(mask):
    world = ShapesWorld(task="chair", split="heldout", n=24)
    model = _Describer(world, side=16)
    greedy, kept, ceiling = RERANK.rerank(model, world, candidates=3, mask=mask, batch_size=8, progress=False)
    assert len(greedy) == len(kept) == 24 and ceiling == 24
    objects = [world[i]["objects"] for i in range(24)]
    phrases = [world[i]["phrases"] for i in range(24)]
    m = RERANK.report(objects, phrases, {"greedy": greedy, "reranked": kept})
    many = sum(len(set(p)) > 1 for p in phrases)
    assert many > 0
    assert m["greedy"]["phrases_all_named"] == pytest.approx(1 - many / 24)
    assert m["reranked"]["phrases_all_named"] == 1.0 and m["reranked"]["all_named"] == 1.0
    assert m["reranked"]["CHAIR_i"] == 0.0
    assert RERANK.misses(phrases, kept) == []
    assert len(RERANK.misses(phrases, greedy)) == many
    # one candidate: the greedy description is kept
    model = _Describer(world, side=16)
    greedy, kept, _ = RERANK.rerank(model, world, candidates=1, mask=mask, batch_size=8, progress=False)
    assert kept == greedy


@pytest.mark.parametrize("steer", [False, True, "strict"])
def test_rerank_guides_with_no_pair_twice_or_with_the_tokens_budgets_and_steering(monkeypatch, steer):
    guides = []

    class Spy:  # records what the guide is built with; changes no logits
        def __init__(self, tokenizer, shape_ids, budgets, steer="none", colour_ids=None, evidence=None):
            guides.append((budgets, steer, colour_ids))

        def __call__(self, generated, logits):
            return logits

    monkeypatch.setattr(RERANK, "PairGuide", Spy)
    world = ShapesWorld(task="chair", split="heldout", n=12)
    model = _Describer(world, side=16)
    RERANK.rerank(model, world, candidates=2, batch_size=8, progress=False, guided=True, steer=steer)
    assert [len(b) for b, _, _ in guides] == [8, 4]
    budgets = [b for bs, _, _ in guides for b in bs]
    for i, budget in enumerate(budgets):
        shape, colour, background = _scores(model.image_embeddings(torch.tensor([i]))[0])
        tokens = pair_budget(shape, colour, RERANK.foreground_from_tokens(shape, background), 16)
        assert budget == (tokens if steer else {})
        if steer:  # the stub's tokens hold exactly the scene's pairs
            assert set(budget) == {(o["color"], o["shape"]) for o in world.scene(i)["objects"]}
    assert {s for _, s, _ in guides} == {"strict" if steer == "strict" else "all" if steer else "none"}
    assert all((c is not None) == bool(steer) for _, _, c in guides)


def test_rerank_refuses_bad_arguments():
    world = ShapesWorld(task="chair", split="heldout", n=2)
    with pytest.raises(ValueError, match="mask"):
        RERANK.rerank(_Describer(world, 4), world, mask="cells", progress=False)
    with pytest.raises(ValueError, match="candidates"):
        RERANK.rerank(_Describer(world, 4), world, candidates=0, progress=False)
    with pytest.raises(ValueError, match="guided"):
        RERANK.rerank(_Describer(world, 4), world, steer=True, progress=False)
    with pytest.raises(ValueError, match="steer must be"):
        RERANK.rerank(_Describer(world, 4), world, guided=True, steer="shapes", progress=False)


def test_main_runs_on_a_saved_tiny_describer_and_refuses_one_without_region_words(tmp_path, capsys):
    from test_vlm_tiny_parts import CORPUS, tiny_cfg

    from modalign.models.vlm import VisionLanguageModel

    torch.manual_seed(0)
    VisionLanguageModel.from_config(tiny_cfg().model_copy(update={"region_words": 0.5}),
                                    text_corpus=CORPUS).save_pretrained(tmp_path / "rw")
    assert RERANK.main([str(tmp_path / "rw"), "--scenes", "3", "--candidates", "2", "--show", "3"]) == 0
    out = capsys.readouterr().out
    assert "3 scenes, 2 candidates (T 0.7), mask tokens" in out
    assert "objects touching another: " in out and out.count(" phrases left out, ") == 2
    assert out.count("\ngreedy ") == out.count("\nreranked ") == 1
    assert RERANK.main([str(tmp_path / "rw"), "--scenes", "2", "--candidates", "2", "--guided"]) == 0
    assert "2 scenes, 2 candidates (T 0.7), mask tokens, guided" in capsys.readouterr().out
    assert RERANK.main([str(tmp_path / "rw"), "--scenes", "2", "--candidates", "2", "--colour-floor", "-2"]) == 0
    assert "2 scenes, 2 candidates (T 0.7), mask tokens, colour floor -2" in capsys.readouterr().out
    assert RERANK.main([str(tmp_path / "rw"), "--scenes", "2", "--candidates", "2", "--guided", "--steer"]) == 0
    assert "2 scenes, 2 candidates (T 0.7), mask tokens, guided and steered (all)" in capsys.readouterr().out
    assert RERANK.main([str(tmp_path / "rw"), "--scenes", "2", "--candidates", "2", "--guided", "--steer",
                        "strict"]) == 0
    assert "guided and steered (strict)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        RERANK.main([str(tmp_path / "rw"), "--scenes", "2", "--steer"])
    assert "needs --guided" in capsys.readouterr().err
    VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).save_pretrained(tmp_path / "plain")
    with pytest.raises(SystemExit):
        RERANK.main([str(tmp_path / "plain"), "--scenes", "3"])
    assert "region words" in capsys.readouterr().err
