"""Small-object scenes: one tiny shape in a large image, for showing what high-resolution tiling (AnyRes) buys.

Each image (default 128 px) holds ONE small object of a few pixels (default 7-10 px box side). Shown to a tower whose
native size is 32 px, the whole image squashed to one view leaves the object ~2 px wide: its colour survives as a
tinted blob, its shape does not. Tiles at the native size see it at full resolution.
Questions: "What shape is the small object?" (qtype `shape`, the one downscaling destroys) and optionally
"What color is the small object?" (qtype `color`, a control: readable at both resolutions). Answers are one word.

Shape must not be recoverable from a blurred blob's total ink, so every shape is drawn with about the same AREA:
its box side is scaled by 1/sqrt(the outline's area fraction) (a triangle's box is ~1.4x a square's), and the side
is jittered. Tasks: `instruct` (LLaVA conversations, one question per item) for training, `vqa` (question, answer,
qtype, as `DATASETS["shapes"](task="vqa")`) for `eval.suites.SUITES["vqa"]`. Items are deterministic from
(seed, split, index); the image of item i is the same in both tasks.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from .shapes.render import draw_object, render
from .shapes.scenes import make_object
from .shapes.vocab import COLOR_NAMES, SHAPES

QUESTIONS = {"shape": "What shape is the small object?", "color": "What color is the small object?"}
DEFAULT_SHAPES = ("circle", "square", "triangle", "cross")
_SPLIT_CODE = {"train": 0, "test": 1}
_AREA_PROBE = 200  # px: outlines are measured at this size once, so small renders share one area table


def area_fraction(shape: str) -> float:
    """Fraction of its bounding box a shape's outline fills (square 1, circle ~pi/4, triangle ~1/2)."""
    canvas = Image.new("L", (_AREA_PROBE, _AREA_PROBE), 0)
    draw_object(
        ImageDraw.Draw(canvas), {"shape": shape, "color": "red", "box": [0, 0, _AREA_PROBE, _AREA_PROBE]}, fill=255
    )
    return float((np.asarray(canvas) > 0).mean())


class SmallObjects(Dataset):
    """n scenes, each with one small object, asked about its shape (and optionally colour)."""

    def __init__(
        self,
        task: str = "vqa",
        n: int = 200,
        split: str = "train",
        seed: int = 0,
        image_size: int = 128,
        object_px=(7, 10),
        shapes=DEFAULT_SHAPES,
        colors=None,
        questions=("shape",),
        background: str = "plain",
    ):
        if task not in ("vqa", "instruct"):
            raise ValueError(f"small-objects task must be 'vqa' or 'instruct', got {task!r}")
        if split not in _SPLIT_CODE:
            raise ValueError(f"small-objects split must be one of {sorted(_SPLIT_CODE)}, got {split!r}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        lo, hi = (int(v) for v in object_px)
        if not 3 <= lo <= hi:
            raise ValueError(f"object_px=(min, max) box side in pixels needs 3 <= min <= max, got {object_px}")
        self.shapes = list(shapes)
        self.colors = list(COLOR_NAMES if colors is None else colors)
        bad = [s for s in self.shapes if s not in SHAPES] + [c for c in self.colors if c not in COLOR_NAMES]
        if bad or len(self.shapes) < 2 or not self.colors:
            raise ValueError(f"shapes must be >= 2 of {SHAPES} and colors >= 1 of {COLOR_NAMES}; bad: {bad}")
        self.questions = list(questions)
        if not self.questions or any(q not in QUESTIONS for q in self.questions):
            raise ValueError(f"questions must be a non-empty list of {sorted(QUESTIONS)}, got {questions}")
        if background not in ("plain", "noise"):
            raise ValueError(f"background must be 'plain' or 'noise', got {background!r}")
        # the largest object (a triangle at the max side) must fit with a margin
        self._scale = {s: 1.0 / math.sqrt(area_fraction(s) / area_fraction("square")) for s in self.shapes}
        biggest = math.ceil(hi * max(self._scale.values()))
        if biggest + 2 > image_size:
            raise ValueError(f"image_size={image_size} is too small for objects up to {biggest}px; raise it")
        self.task, self.n, self.split, self.seed = task, n, split, seed
        self.image_size, self.object_px, self.background = image_size, (lo, hi), background

    def __len__(self) -> int:
        return self.n * len(self.questions)

    def image_id(self, i: int) -> str:
        return f"smallobj-{self.split}-s{self.seed}-{i:06d}"

    def scene(self, i: int) -> dict:
        """The scene graph of image i (same dict layout as the shapes world, so `render` draws it)."""
        if not 0 <= i < self.n:
            raise IndexError(f"scene {i} out of range 0..{self.n - 1}")
        rng = np.random.default_rng([self.seed, _SPLIT_CODE[self.split], i])
        shape = self.shapes[int(rng.integers(len(self.shapes)))]
        color = self.colors[int(rng.integers(len(self.colors)))]
        # equal-area sizing: a square of side s and a triangle of side ~1.41 s cover the same number of pixels
        side = int(round(rng.uniform(self.object_px[0], self.object_px[1]) * self._scale[shape]))
        x0, y0 = (int(v) for v in rng.integers(1, self.image_size - side, size=2))
        obj = make_object(shape, color, "small", (x0, y0, x0 + side, y0 + side), self.image_size)
        return {
            "image_size": self.image_size,
            "background": self.background,
            "noise_seed": int(rng.integers(2**31)),
            "objects": [obj],
        }

    def record(self, idx: int) -> dict:
        """Item idx without pixels; items 0..n-1 ask the first question type about images 0..n-1, and so on."""
        if not 0 <= idx < len(self):
            raise IndexError(f"item {idx} out of range 0..{len(self) - 1}")
        qtype, i = self.questions[idx // self.n], idx % self.n
        obj = self.scene(i)["objects"][0]
        question, answer = QUESTIONS[qtype], obj["shape" if qtype == "shape" else "color"]
        rec = {"id": self.image_id(i), "scene_index": i}
        if self.task == "vqa":
            return {**rec, "qid": f"{rec['id']}-{qtype}", "question": question, "answer": answer, "qtype": qtype}
        return {
            **rec,
            "conversations": [{"from": "human", "value": "<image>\n" + question}, {"from": "gpt", "value": answer}],
        }

    def __getitem__(self, idx: int) -> dict:
        rec = self.record(idx)
        rec["image"] = render(self.scene(rec.pop("scene_index")))
        return rec

    def texts(self):
        """Every string the items can hold (for training a tokenizer): the questions and all possible answers."""
        yield from (QUESTIONS[q] for q in self.questions)
        yield from self.shapes
        yield from self.colors
