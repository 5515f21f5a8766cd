"""scripts/region_readout.py: objects read out of visual tokens through the word embeddings, checked by hand and on a
stub describer whose tokens hold exactly the objects it is told to."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from modalign.data.shapes import ShapesWorld
from modalign.data.vocab import COLOR_NAMES, SHAPES

from script_loader import load_script

WORDS = SHAPES + COLOR_NAMES  # a vocabulary of one token per word, embedded one-hot
READOUT = load_script("region_readout")


def _ids(word: str) -> list[int]:
    return [WORDS.index(word.strip())]


def test_object_cells_by_hand():
    # a 40 px image on a 4 x 4 grid: cell centres at 5, 15, 25, 35
    objs = [{"box": [0, 0, 20, 20]}, {"box": [10, 10, 30, 30]}, {"box": [36, 36, 40, 40]}]
    cells = READOUT.object_cells(objs, 40, 40, 4)
    # the second object, drawn later, takes the shared cell (row 1, col 1 = 5); the third covers no centre
    assert cells == [[0, 1, 4], [5, 6, 9, 10], []]


def test_read_objects_takes_each_objects_best_words():
    emb = torch.eye(len(WORDS))
    tokens = torch.zeros(4, len(WORDS))
    tokens[0, WORDS.index("star")] = tokens[0, WORDS.index("red")] = 5.0
    tokens[1, WORDS.index("star")] = 1.0  # a weaker second cell of the same object
    tokens[1, WORDS.index("circle")] = 2.0
    tokens[1, WORDS.index("red")] = 3.0
    tokens[2, WORDS.index("cross")] = tokens[2, WORDS.index("blue")] = 4.0
    # mean log-probabilities over cells 0 and 1: star (5 + 1) beats circle (0 + 2)
    read = READOUT.read_objects(tokens, emb, [[0, 1], [2], []], [_ids(w) for w in SHAPES],
                                [_ids(c) for c in COLOR_NAMES])
    assert read == [("red", "star"), ("blue", "cross"), (None, None)]


def test_named_flags_by_hand():
    objs = [{"color": "red", "shape": "star"}, {"color": "red", "shape": "star"}, {"color": "blue", "shape": "cross"}]
    text = "There are three objects. A small red star is here. A large blue circle is there."
    assert READOUT.named_flags(text, objs) == [True, False, False]
    assert READOUT.named_flags(text + " Another red star. A blue cross.", objs) == [True, True, True]


class _Reads:
    """Tokens that point at the true words of the scene's objects (all, or the first only); descriptions that name
    the first object only."""

    def __init__(self, world, side: int, see_all: bool):
        self.world, self.side, self.see_all, self._next = world, side, see_all, 0
        self.prompts = SimpleNamespace(tokens_per_image=side * side)
        self._region_word_ids = _ids
        emb = torch.eye(len(WORDS))
        self.lm = SimpleNamespace(get_input_embeddings=lambda: SimpleNamespace(weight=emb))

    def image_inputs(self, images):
        idx = torch.arange(self._next, self._next + len(images))
        self._next += len(images)
        return idx, [self.side * self.side] * len(images), None

    def image_embeddings(self, idx):
        out = torch.zeros(len(idx), self.side * self.side, len(WORDS))
        for row, i in enumerate(idx.tolist()):
            scene = self.world.scene(i)
            size = self.world.image_size
            objs = scene["objects"] if self.see_all else scene["objects"][:1]
            for o, cs in zip(objs, READOUT.object_cells(scene["objects"], size, size, self.side)):
                for c in cs:
                    out[row, c, WORDS.index(o["shape"])] = out[row, c, WORDS.index(o["color"])] = 6.0
        return out

    def generate(self, images, prompts, max_new_tokens=128):
        scenes = [self.world.scene(i) for i in range(self._next - len(images), self._next)]
        return [f"There are some objects. A {sc['objects'][0]['color']} {sc['objects'][0]['shape']} is here."
                for sc in scenes]


def test_tally_splits_the_readout_by_whether_the_description_names_the_object():
    world = ShapesWorld(task="caption", caption="detailed", n=24, split="heldout")
    total = sum(len(world.scene(i)["objects"]) for i in range(len(world)))
    seen = READOUT.tally(_Reads(world, side=16, see_all=True), world, batch_size=8)
    named, left = seen["named"], seen["left out"]
    assert named["objects"] + left["objects"] == total and left["objects"] > 0
    assert named["objects"] >= 24  # every first object, and any twin of it
    for c in (named, left):  # every object with a cell of its own is read right
        assert c["both"] == c["shape"] == c["colour"] == c["objects"] - c["no_cell"]
    assert named["no_cell"] + left["no_cell"] < total / 10
    # tokens that hold only the first object: the others are read as the first words of the vocabulary
    blind = READOUT.tally(_Reads(world, side=16, see_all=False), world, batch_size=8)["left out"]
    assert blind["objects"] == left["objects"]
    assert blind["both"] < left["both"] / 2
