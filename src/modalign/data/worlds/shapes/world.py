"""The shapes world as torch Datasets: one class, eight tasks, five splits, deterministic from a seed.

`ShapesWorld(task=..., n=..., split=..., seed=...)` (registered as `DATASETS["shapes"]`) holds n scenes; scene i comes
from its own random stream (seed, split, i), so it is the same whatever n is, and images render lazily per item.
Items follow docs/INTERFACES.md; `id` names the image (shared by the several questions asked about it).
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from .grounding import grounding_item
from .language import caption as make_caption
from .language import detailed_caption, short_caption
from .pope import SAMPLERS, PopeStats, pope_questions
from .probes import probe, winoground_pair
from .render import render
from .scenes import layout_scene, present_objects
from .splits import SPLIT_CODE, SplitRule, cooccurrence
from .vocab import chair_synonyms
from .vqa import conversation, vqa_items

TASKS = ("caption", "instruct", "vqa", "pope", "probes", "winoground", "grounding", "chair")
_TASK_CODE = {t: k + 1 for k, t in enumerate(TASKS)}  # 0 is the scene stream itself
# POPE asks about 3 present objects and probes relate two: by default their scenes have enough. With fewer allowed,
# scenes that cannot carry an item are left out of the item index (their ids are simply absent).
_MIN_OBJECTS = {"pope": 3, "probes": 2}


class ShapesWorld(Dataset):
    """Scenes of coloured shapes with ground truth, and the language and probes derived from them.

    task: what an item is: caption, instruct, vqa, pope, probes, winoground, grounding or chair (docs/DATA.md).
    n: number of scenes (vqa, pope and probes items are questions about them, several per scene).
    split: train, test, heldout, confounded-train or confounded-test: which objects a scene may hold (splits.py).
    seed: scene i comes from the random stream (seed, split, i), whatever n is.
    image_size: side of the square image in pixels, >= 32.
    min_objects: fewest objects in a scene (default 1; 3 for pope, 2 for probes).
    max_objects: most objects in a scene.
    max_overlap: two objects' boxes share at most this fraction of the smaller box, in [0, 1).
    background: plain, noise, texture, or mixed (one of the three drawn per scene).
    caption: the caption task's text: short ("a red circle and a blue star"), detailed (every object), or mixed.
    synonym_p: probability that a short caption says a colour or shape by a synonym ("disc" for circle).
    pope_samplers: POPE's absent-object samplers, of random, popular, adversarial (a list, or "random+popular").
    max_turns: an instruct conversation asks up to max_turns - 1 questions, plus one for a detailed description.
    heldout_pairs: (colour, shape) pairs train and test never show (default: splits.default_heldout_pairs()).
    short_p: probability that an instruct question asks for the bare answer (vqa.SHORT_ANSWER), not a sentence.
    """

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
        if not 0 <= max_overlap < 1:
            raise ValueError(f"max_overlap is a fraction of the smaller box in [0, 1), got {max_overlap}")
        if not 0 <= short_p <= 1:
            raise ValueError(f"short_p is the probability of a short-answer VQA turn, in [0, 1]; got {short_p}")
        self.task, self.n, self.split, self.seed = task, n, split, seed
        self.image_size, self.max_overlap, self.background = image_size, max_overlap, background
        self.min_objects, self.max_objects = min_objects, max_objects
        self.caption_style, self.synonym_p, self.max_turns, self.short_p = caption, synonym_p, max_turns, short_p
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
                    qs = vqa_items(scene, rng, self.rule.allowed)
                elif task == "pope":
                    enough = len(present_objects(scene)) >= 3
                    qs = pope_questions(scene, rng, stats, self.pope_samplers) if enough else []
                else:
                    qs = [probe(scene, rng)] if len(scene["objects"]) >= 2 else []
                self._questions[i] = qs
                self._index.extend((i, k) for k in range(len(qs)))

    @property
    def vocabulary(self) -> dict[str, list[str]]:
        """CHAIR's synonym table of this world, {canonical shape: [words that name it]} (`vocab.chair_synonyms()`);
        the `chair` eval suite reads it from the dataset."""
        return chair_synonyms()

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
                objects = self.rule.sample(rng, int(rng.integers(self.min_objects, self.max_objects + 1)))
                self._scenes[i] = layout_scene(rng, objects, self.image_size, self.max_overlap, self.background)
        return self._scenes[i]

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
        scene, rng = self.scene(i), self._rng(i)
        if self.task == "caption":
            return {
                **base,
                "text": make_caption(scene, rng, self.caption_style, self.synonym_p),
                "meta": {"scene": scene, "split": self.split},
                "regions": regions(scene),
            }
        if self.task == "instruct":
            return {
                **base,
                "regions": regions(scene),
                "conversations": conversation(scene, rng, self.max_turns, self.short_p, self.rule.allowed),
            }
        if self.task == "grounding":
            return {**base, **grounding_item(scene, rng)}
        # chair: canonical shape names present, plus the colour+shape phrases
        return {
            **base,
            "objects": sorted({o["shape"] for o in scene["objects"]}),
            "phrases": sorted({f"{o['color']} {o['shape']}" for o in scene["objects"]}),
        }

    def __getitem__(self, idx: int) -> dict:
        rec = self.record(idx)
        i = rec.pop("scene_index")
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


def regions(scene: dict) -> list[dict]:
    """Region annotations of a scene (box + the words naming the object there), in drawing order, for the
    region-word alignment loss (models/region_words.py)."""
    return [
        {"box": list(o["box"]), "text": f"{o['size']} {o['color']} {o['shape']} {o['position']}"}
        for o in scene["objects"]
    ]
