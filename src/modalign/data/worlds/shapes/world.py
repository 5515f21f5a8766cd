"""The shapes world as torch Datasets: one class, eight tasks, five splits, deterministic from a seed.

`ShapesWorld(task=..., n=..., split=..., seed=...)` (registered as `DATASETS["shapes"]`) holds n scenes; scene i comes
from its own random stream (seed, split, i), so it is the same whatever n is, and images render lazily per item.
Items follow docs/INTERFACES.md; `id` names the image (shared by the several questions asked about it).
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from .grounding import grounding_item
from .language import (
    BACKGROUND_WORDS,
    check_describe_order,
    check_describe_relations,
    detailed_caption,
    short_caption,
)
from .language import caption as make_caption
from .pope import SAMPLERS, PopeStats, pope_questions
from .probes import probe, winoground_pair
from .render import render
from .scenes import layout_scene, present_objects
from .splits import SPLIT_CODE, SplitRule, check_shared_color, cooccurrence
from .vqa import check_describe_at, check_per_type, conversation, vqa_items

TASKS = ("caption", "instruct", "vqa", "pope", "probes", "winoground", "grounding", "chair")
_TASK_CODE = {t: k + 1 for k, t in enumerate(TASKS)}  # 0 is the scene stream itself
# POPE asks about 3 present objects and probes relate two: by default their scenes have enough. With fewer allowed,
# scenes that cannot carry an item are left out of the item index (their ids are simply absent).
_MIN_OBJECTS = {"pope": 3, "probes": 2}
# random streams of their own (tasks use 1..8, scenes 0, texts 99)
_TEXT_ONLY_STREAM, _IMAGINED_STREAM, _SHARED_COLOR_STREAM = 101, 102, 103
TEXT_ONLY_PROMPTS = ["Describe an imaginary picture of shapes.", "Write a description of a made-up scene of shapes."]


def _count_probabilities(weights, min_objects: int, max_objects: int):
    """object_count_weights (one weight per object count min_objects..max_objects) -> probabilities, or None."""
    if weights is None:
        return None
    want = max_objects - min_objects + 1
    try:
        w = np.asarray(weights, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        w = np.array([])
    if w.size != want or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(
            f"object_count_weights needs {want} non-negative weights, one per object count "
            f"{min_objects}..{max_objects} (not all 0), got {weights!r}"
        )
    return w / w.sum()


def _check_probability(name: str, p: float, what: str) -> None:
    """Refuse a probability outside [0, 1], saying what it is the probability of."""
    if not 0 <= p <= 1:
        raise ValueError(f"{name} is the probability {what}, in [0, 1]; got {p}")


class ShapesWorld(Dataset):
    """Scenes of coloured shapes with ground truth, and the language and probes derived from them."""

    def __init__(
        self,
        task: str = "caption",
        n: int = 1000,
        split: str = "train",
        seed: int = 0,
        image_size: int = 64,
        min_objects: int | None = None,
        max_objects: int = 4,
        max_overlap: float = 0.1,
        background: str = "plain",
        caption: str = "short",
        synonym_p: float = 0.2,
        pope_samplers=SAMPLERS,
        max_turns: int = 4,
        heldout_pairs=None,
        short_p: float = 0.5,
        describe_p: float = 1.0,
        describe_at: str = "random",
        shape_first_p: float = 0.0,
        near_miss_p: float = 0.0,
        image_last_p: float = 0.0,
        region_background: bool = False,
        questions_per_type=None,
        describe_order: str = "drawn",
        where_first_p: float = 0.0,
        where_shape_first_p: float = 0.0,
        object_count_weights=None,
        text_only_p: float = 0.0,
        shared_color_p: float = 0.0,
        describe_relations: str = "nearest",
    ):
        if task not in TASKS:
            raise ValueError(f"unknown shapes task {task!r}; choose one of {', '.join(TASKS)}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels (shapes need room), got {image_size}")
        min_objects = _MIN_OBJECTS.get(task, 1) if min_objects is None else min_objects
        if not 1 <= min_objects <= max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects} and {max_objects}")
        self.object_count_p = _count_probabilities(object_count_weights, min_objects, max_objects)
        if not 0 <= max_overlap < 1:
            raise ValueError(f"max_overlap is a fraction of the smaller box in [0, 1), got {max_overlap}")
        _check_probability("short_p", short_p, "of a short-answer VQA turn")
        _check_probability("describe_p", describe_p, "of a describe turn")
        check_describe_at(describe_at)
        _check_probability("shape_first_p", shape_first_p, "of a shape-first sentence in a description")
        _check_probability("where_first_p", where_first_p, "of a place-first sentence in a description")
        _check_probability(
            "where_shape_first_p",
            where_shape_first_p,
            "that a place-first sentence also names the shape before colour and size",
        )
        _check_probability("near_miss_p", near_miss_p, "of a near-miss absent object in an existence question")
        _check_probability("image_last_p", image_last_p, "that the image follows the first question")
        _check_probability("text_only_p", text_only_p, "of a text-only conversation (no image)")
        _check_probability(
            "shared_color_p", shared_color_p, "that a scene of two or more objects has two objects of one colour"
        )
        check_shared_color(split, shared_color_p)
        if text_only_p > 0 and task != "instruct":
            raise ValueError(
                f"text_only_p mixes text-only conversations into instruction data: it applies to task "
                f"'instruct', not {task!r}"
            )
        self.task, self.n, self.split, self.seed = task, n, split, seed
        self.short_p, self.describe_p, self.describe_at = short_p, describe_p, describe_at
        self.shape_first_p, self.near_miss_p, self.image_last_p = shape_first_p, near_miss_p, image_last_p
        self.region_background = region_background
        self.questions_per_type = check_per_type(questions_per_type)
        check_describe_order(describe_order)
        check_describe_relations(describe_relations)
        self.describe_relations = describe_relations
        self.describe_order, self.where_first_p = describe_order, where_first_p
        self.where_shape_first_p = where_shape_first_p
        self.image_size, self.max_overlap, self.background = image_size, max_overlap, background
        self.min_objects, self.max_objects = min_objects, max_objects
        self.caption_style, self.synonym_p, self.max_turns = caption, synonym_p, max_turns
        if isinstance(pope_samplers, str):  # from a command line: "random" or "random+popular"
            pope_samplers = [x for x in pope_samplers.split("+") if x]
        self.pope_samplers = tuple(pope_samplers)
        unknown = [x for x in self.pope_samplers if x not in SAMPLERS]
        if unknown:
            raise ValueError(
                f"unknown POPE sampler(s) {unknown}; choose from {', '.join(SAMPLERS)} "
                "(on a command line join several with '+')"
            )
        self.rule = SplitRule(split, heldout_pairs)
        self.text_only_p, self.shared_color_p = text_only_p, shared_color_p
        # imagined scenes are words only: every colour-shape pair may appear in them, as in any LM's text
        self._text_rule = SplitRule("train", [])
        self._scenes: dict[int, dict] = {}
        self._code = SPLIT_CODE[split]
        self._index: list[tuple[int, int]] | None = None  # (scene, k-th question) for per-question tasks
        self._questions: dict[int, list[dict]] = {}
        self.skipped = 0
        if task in ("vqa", "pope", "probes"):
            stats = PopeStats(self.scene(i) for i in range(n)) if task == "pope" else None
            self.pope_stats = stats
            self._index = []
            for i in range(n):
                scene, rng = self.scene(i), self._rng(i)
                if task == "vqa":
                    qs = vqa_items(scene, rng, self.rule.allowed, per_type=self.questions_per_type)
                elif task == "pope":
                    enough = len(present_objects(scene)) >= 3
                    qs = pope_questions(scene, rng, stats, self.pope_samplers) if enough else []
                else:
                    qs = [probe(scene, rng)] if len(scene["objects"]) >= 2 else []
                self._questions[i] = qs
                self._index.extend((i, k) for k in range(len(qs)))

    # -- scenes ---------------------------------------------------------------------------------------------
    def _rng(self, i: int, stream: int | None = None):
        return np.random.default_rng([self.seed, self._code, i, _TASK_CODE[self.task] if stream is None else stream])

    def scene(self, i: int) -> dict:
        """The scene graph of scene i (for winoground: of the pair's first image; see `pair(i)`)."""
        if i not in self._scenes:
            if not 0 <= i < self.n:
                raise IndexError(f"scene {i} out of range 0..{self.n - 1}")
            if self.task == "winoground":
                self._scenes[i] = self.pair(i)[0][0]
            else:
                rng = self._rng(i, 0)
                share_rng = self._rng(i, _SHARED_COLOR_STREAM) if self.shared_color_p > 0 else None
                objects = self.rule.sample(rng, self._object_count(rng), self.shared_color_p, share_rng)
                self._scenes[i] = layout_scene(rng, objects, self.image_size, self.max_overlap, self.background)
        return self._scenes[i]

    def _object_count(self, rng) -> int:
        if self.object_count_p is None:
            return int(rng.integers(self.min_objects, self.max_objects + 1))
        return self.min_objects + int(rng.choice(len(self.object_count_p), p=self.object_count_p))

    def pair(self, i: int):
        """Winoground pair i: ([scene0, scene1], [caption0, caption1], kind)."""
        return winoground_pair(self._rng(i, 0), self.rule, self.image_size, self.max_overlap, self.background)

    def image_id(self, i: int) -> str:
        return f"shapes-{self.split}-s{self.seed}-{i:06d}"

    def cooccurrence(self) -> dict:
        """Shape-shape and shape-colour co-occurrence over this dataset's scenes."""
        return cooccurrence(self.scene(i) for i in range(self.n))

    # -- items ----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._index) if self._index is not None else self.n

    def record(self, idx: int) -> dict:
        """The item without pixels: what a manifest line holds (`scene_index` says which image to render)."""
        if not 0 <= idx < len(self):
            raise IndexError(f"item {idx} out of range 0..{len(self) - 1}")
        if self._index is not None:
            i, k = self._index[idx]
            rec = {"id": self.image_id(i), "scene_index": i}
            if self.task != "probes":
                rec["qid"] = f"{self.image_id(i)}-q{k}"
            rec.update(self._questions[i][k])
            return rec
        i = idx
        base = {"id": self.image_id(i), "scene_index": i}
        if self.task == "winoground":
            scenes, captions, kind = self.pair(i)
            self._scenes.setdefault(i, scenes[0])
            return {
                **base,
                "image_ids": [f"{base['id']}-0", f"{base['id']}-1"],
                "captions": captions,
                "kind": kind,
                "scenes": scenes,
            }
        if self.task == "instruct" and self._text_only(i):  # before scene i: a text-only item never lays it out
            return {**base, "text_only": True, "conversations": self._text_only_conversation(i)}
        scene, rng = self.scene(i), self._rng(i)
        if self.task == "caption":
            return {
                **base,
                "text": make_caption(
                    scene,
                    rng,
                    self.caption_style,
                    self.synonym_p,
                    self.describe_order,
                    self.where_first_p,
                    self.where_shape_first_p,
                    self.describe_relations,
                ),
                "meta": {"scene": scene, "split": self.split},
                "regions": regions(scene, self.image_size, self.region_background),
            }
        if self.task == "instruct":
            return {
                **base,
                "regions": regions(scene, self.image_size, self.region_background),
                "conversations": conversation(
                    scene,
                    rng,
                    self.max_turns,
                    self.short_p,
                    self.rule.allowed,
                    self.describe_p,
                    self.describe_at,
                    self.shape_first_p,
                    self.near_miss_p,
                    self.image_last_p,
                    self.questions_per_type,
                    self.describe_order,
                    self.where_first_p,
                    self.where_shape_first_p,
                    self.describe_relations,
                ),
            }
        if self.task == "grounding":
            return {**base, **grounding_item(scene, rng)}
        # chair: canonical shape names present, plus the colour+shape phrases
        return {
            **base,
            "objects": sorted({o["shape"] for o in scene["objects"]}),
            "phrases": sorted({f"{o['color']} {o['shape']}" for o in scene["objects"]}),
        }

    def _text_only(self, i: int) -> bool:
        # a stream of its own: with text_only_p = 0 no draw is made and every other record stays as it was
        return self.text_only_p > 0 and self._rng(i, _TEXT_ONLY_STREAM).random() < self.text_only_p

    def _text_only_conversation(self, i: int) -> list[dict]:
        """A description of an imagined scene, asked for without an image (LLaVA-1.5 mixes text-only conversations
        into its instruction data): the language side meets every colour-shape pair, the image side only the
        split's."""
        rng = self._rng(i, _IMAGINED_STREAM)
        objects = self._text_rule.sample(rng, self._object_count(rng))
        scene = layout_scene(rng, objects, self.image_size, self.max_overlap, self.background)
        text = detailed_caption(
            scene,
            rng,
            self.shape_first_p,
            self.describe_order,
            self.where_first_p,
            self.where_shape_first_p,
            self.describe_relations,
        )
        return [
            {"from": "human", "value": TEXT_ONLY_PROMPTS[int(rng.integers(len(TEXT_ONLY_PROMPTS)))]},
            {"from": "gpt", "value": text},
        ]

    def __getitem__(self, idx: int) -> dict:
        rec = self.record(idx)
        i = rec.pop("scene_index")
        if rec.pop("text_only", False):
            return rec
        if self.task == "winoground":
            rec["images"] = [render(s) for s in rec.pop("scenes")]
            return rec
        rec["image"] = render(self.scene(i))
        return rec

    def texts(self):
        """Every string the dataset holds (captions of both styles, questions, answers, probes), for tokenizers."""
        for idx in range(len(self)):
            rec = self.record(idx)
            if self.task == "caption":
                scene = self.scene(rec["scene_index"])
                yield rec["text"]
                yield short_caption(scene, self._rng(rec["scene_index"], 99), self.synonym_p)
                yield detailed_caption(scene, self._rng(rec["scene_index"], 99))
            elif self.task == "instruct":
                yield from (t["value"] for t in rec["conversations"])
            elif self.task in ("vqa", "pope"):
                yield rec["question"]
                yield rec["answer"]
            elif self.task == "probes":
                yield rec["positive"]
                yield from (n["text"] for n in rec["negatives"])
            elif self.task == "winoground":
                yield from rec["captions"]
            elif self.task == "grounding":
                yield rec["expression"]
            else:
                yield from rec["phrases"]


def regions(scene: dict, image_size: int, background: bool = False) -> list[dict]:
    """Region annotations of a scene (box + the words naming the object there), in drawing order, for the
    region-word alignment loss (models/region_words.py). `background`: a first region over the whole image names
    the background ("plain grey background"), so the cells no object covers learn words of their own too."""
    objs = [
        {"box": list(o["box"]), "text": f"{o['size']} {o['color']} {o['shape']} {o['position']}"}
        for o in scene["objects"]
    ]
    if not background:
        return objs
    bg = BACKGROUND_WORDS.get(scene.get("background", "plain"), "grey")
    return [{"box": [0, 0, image_size, image_size], "text": f"{bg} background"}, *objs]


def shapes_dataset(**params) -> ShapesWorld:
    """DATASETS["shapes"] builder."""
    return ShapesWorld(**params)
