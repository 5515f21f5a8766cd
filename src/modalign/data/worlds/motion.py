"""The shapes world in motion: short clips where objects move, appear, disappear or change colour, with their tracks.

A clip is `frames` frames (default 8) of a `image_size` square (shapes-world rendering: flat colours on grey) with 2
or 3 objects of distinct shapes, so "the circle" names one object. Each object has one event:
- `move`: it slides in a straight line `left`, `right`, `up` or `down` by 35-50% of the image over the clip;
- `change`: its colour switches to another colour at frame k;
- `appear` / `disappear`: it is there only from frame k on / only before frame k;
- `static`: nothing happens to it.
Timed events (change, appear, disappear) happen at distinct frames, 1 <= k <= frames - 1, at least two frames apart.
`track(i)` is the ground truth: per object its event and per frame its box, colour and visibility.

Tasks (`MotionWorld(task=...)`, dataset `motion`): `caption` ({"id", "video", "text"}: "the circle moves left and
the red star turns blue"), `vqa` ({"id", "qid", "video", "question", "answer", "qtype"}) and `instruct` ({"id",
"video", "conversations"}: the clip's questions as turns after one `<video>`, and with `describe` one "Describe what
happens in the video." turn answered by the caption, at a random place, as the shapes world's conversations have).
Question types:
- `motion`: "Which way does the circle move?" -> left / right / up / down;
- `change`: "What color does the star turn?" -> the new colour;
- `appear`: "Does the square appear or disappear?" -> appear / disappear;
- `order`: "Which changes first, the star or the square?" (two timed events) -> the shape whose event comes first.
Each needs the frames in order: with the frames reversed a motion or change question flips its answer, shuffled it
is at chance — the temporal probe of eval/suites/video.py measures exactly that.
"""

from __future__ import annotations

import itertools

import numpy as np
from torch.utils.data import Dataset

from .shapes.render import render
from .shapes.vocab import COLOR_NAMES, SHAPES, SIZE_FRACTION
from .texts import record_texts

TASKS = ("caption", "vqa", "instruct")
EVENTS = ("move", "change", "appear", "disappear", "static")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
QTYPES = ("motion", "change", "appear", "order")
SHORT_ANSWER = "Answer with a single word or phrase."
DESCRIBE = "Describe what happens in the video."
_SPLIT_CODE = {"train": 0, "test": 1, "heldout": 2}
_EVENT_P = (0.3, 0.25, 0.15, 0.15, 0.15)  # move, change, appear, disappear, static


def _sample_events(rng, n: int, frames: int) -> list[str]:
    events = [EVENTS[int(rng.choice(len(EVENTS), p=_EVENT_P))] for _ in range(n)]
    if all(e == "static" for e in events):
        events[0] = "move"
    return events


def _timings(rng, n: int, frames: int) -> list[int]:
    """n distinct event frames in 1..frames-1, at least two apart (rejection sampling; fewer when there is no room)."""
    slots = list(range(1, frames))
    for _ in range(100):
        picks = sorted(int(k) for k in rng.choice(slots, size=min(n, len(slots)), replace=False))
        if all(b - a >= 2 for a, b in itertools.pairwise(picks)):
            return [int(k) for k in rng.permutation(picks)]
    return []


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class MotionWorld(Dataset):
    """Clips of shapes that move, change colour, appear or disappear, with ground-truth tracks (module docstring).

    task: caption, vqa or instruct. n: number of clips (vqa: a few questions per clip).
    split: train, test or heldout: which random stream clips come from. seed: clip i comes from (seed, split, i).
    frames: frames per clip (>= 4). image_size: frame side in pixels (>= 32). max_objects: 2 or 3.
    describe: instruct: add a description turn (the caption) to each conversation.
    """

    def __init__(
        self,
        task: str = "vqa",
        n: int = 1000,
        split: str = "train",
        seed: int = 0,
        frames: int = 8,
        image_size: int = 64,
        max_objects: int = 3,
        describe: bool = True,
    ):
        if task not in TASKS:
            raise ValueError(f"unknown motion task {task!r}; choose one of {', '.join(TASKS)}")
        if split not in _SPLIT_CODE:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(_SPLIT_CODE)}")
        if frames < 4 or image_size < 32 or max_objects not in (2, 3) or n < 1:
            raise ValueError("need frames >= 4, image_size >= 32, max_objects 2 or 3 and n >= 1")
        self.task, self.n, self.split, self.seed = task, n, split, seed
        self.frames, self.image_size, self.max_objects, self.describe = frames, image_size, max_objects, describe
        self._tracks: dict[int, list[dict]] = {}
        self._index = None
        if task == "vqa":
            self._index = [(i, k) for i in range(n) for k in range(len(self.questions(i)))]

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else self.n

    def _rng(self, i: int, part: int):
        return np.random.default_rng([self.seed, 53, _SPLIT_CODE[self.split], i, part])

    # -- ground truth -----------------------------------------------------------------------------------------
    def track(self, i: int) -> list[dict]:
        """Clip i's objects: {"shape", "event", "direction", "frame", "colors" [T], "visible" [T], "boxes" [T]}."""
        if i not in self._tracks:
            if not 0 <= i < self.n:
                raise IndexError(f"clip {i} out of range 0..{self.n - 1}")
            self._tracks[i] = self._make_track(self._rng(i, 0))
        return self._tracks[i]

    def _make_track(self, rng) -> list[dict]:
        t_n = self.frames
        n = int(rng.integers(2, self.max_objects + 1))
        shapes = [SHAPES[int(k)] for k in rng.choice(len(SHAPES), size=n, replace=False)]
        events = _sample_events(rng, n, t_n)
        timed = [k for k, e in enumerate(events) if e in ("change", "appear", "disappear")]
        frames = _timings(rng, len(timed), t_n)
        if len(frames) < len(timed):  # no room for that many distinct times: the extra ones stay still
            for k in timed[len(frames) :]:
                events[k] = "static"
            timed = timed[: len(frames)]
        if all(e == "static" for e in events):
            events[0] = "move"
        when = dict(zip(timed, frames))
        for _ in range(200):
            objects = [self._object(rng, shapes[k], events[k], when.get(k)) for k in range(n)]
            if not any(
                _overlaps(a["boxes"][t], b["boxes"][t])
                for a_i, a in enumerate(objects)
                for b in objects[a_i + 1 :]
                for t in range(t_n)
            ):
                return objects
        raise RuntimeError("could not lay out a clip without overlaps; use a larger image_size or fewer objects")

    def _object(self, rng, shape: str, event: str, frame: int | None) -> dict:
        s, t_n = self.image_size, self.frames
        side = int(round(SIZE_FRACTION["large" if rng.random() < 0.5 else "small"] * s))
        color = COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))]
        colors, visible = [color] * t_n, [True] * t_n
        direction = None
        x0, y0 = int(rng.integers(0, s - side + 1)), int(rng.integers(0, s - side + 1))
        path = [(x0, y0)] * t_n
        if event == "move":
            direction = list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))]
            dx, dy = DIRECTIONS[direction]
            dist = int(round(rng.uniform(0.35, 0.5) * s))
            lo = [0, 0]
            hi = [s - side, s - side]
            for axis, d in ((0, dx), (1, dy)):  # start far enough from the edge it moves towards
                if d > 0:
                    hi[axis] = s - side - dist
                elif d < 0:
                    lo[axis] = dist
            x0, y0 = int(rng.integers(lo[0], hi[0] + 1)), int(rng.integers(lo[1], hi[1] + 1))
            path = [
                (int(round(x0 + dx * dist * t / (t_n - 1))), int(round(y0 + dy * dist * t / (t_n - 1))))
                for t in range(t_n)
            ]
        elif event == "change":
            new = [c for c in COLOR_NAMES if c != color][int(rng.integers(len(COLOR_NAMES) - 1))]
            colors = [color if t < frame else new for t in range(t_n)]
        elif event == "appear":
            visible = [t >= frame for t in range(t_n)]
        elif event == "disappear":
            visible = [t < frame for t in range(t_n)]
        boxes = [[x, y, x + side, y + side] for x, y in path]
        return {
            "shape": shape,
            "event": event,
            "direction": direction,
            "frame": frame,
            "colors": colors,
            "visible": visible,
            "boxes": boxes,
        }

    def render_clip(self, i: int) -> list:
        """The clip's frames as PIL RGB images, in time order."""
        objects = self.track(i)
        frames = []
        for t in range(self.frames):
            drawn = [
                {"shape": o["shape"], "color": o["colors"][t], "box": o["boxes"][t]} for o in objects if o["visible"][t]
            ]
            frames.append(render({"image_size": self.image_size, "background": "plain", "objects": drawn}))
        return frames

    # -- language ---------------------------------------------------------------------------------------------
    def questions(self, i: int) -> list[dict]:
        objects, rng, out = self.track(i), self._rng(i, 1), []
        for o in objects:
            if o["event"] == "move":
                out.append({"question": f"Which way does the {o['shape']} move?", "answer": o["direction"]})
                out[-1]["qtype"] = "motion"
            elif o["event"] == "change":
                out.append({"question": f"What color does the {o['shape']} turn?", "answer": o["colors"][-1]})
                out[-1]["qtype"] = "change"
            elif o["event"] in ("appear", "disappear"):
                q = f"Does the {o['shape']} appear or disappear?"
                out.append({"question": q, "answer": o["event"], "qtype": "appear"})
        timed = [o for o in objects if o["frame"] is not None]
        if len(timed) >= 2:
            a, b = (timed[int(k)] for k in rng.choice(len(timed), size=2, replace=False))
            first = a if a["frame"] < b["frame"] else b
            q = f"Which changes first, the {a['shape']} or the {b['shape']}?"
            out.append({"question": q, "answer": first["shape"], "qtype": "order"})
        return out

    def caption(self, i: int) -> str:
        parts = []
        for o in self.track(i):
            c0, c1 = o["colors"][0], o["colors"][-1]
            if o["event"] == "move":
                parts.append(f"the {c0} {o['shape']} moves {o['direction']}")
            elif o["event"] == "change":
                parts.append(f"the {c0} {o['shape']} turns {c1}")
            elif o["event"] == "appear":
                parts.append(f"a {c0} {o['shape']} appears")
            elif o["event"] == "disappear":
                parts.append(f"the {c0} {o['shape']} disappears")
            else:
                parts.append(f"the {c0} {o['shape']} stays still")
        return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]

    def clip_id(self, i: int) -> str:
        return f"motion-{self.split}-s{self.seed}-{i:06d}"

    def record(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(f"item {idx} out of range 0..{len(self) - 1}")
        if self._index is not None:
            i, k = self._index[idx]
            return {"id": self.clip_id(i), "qid": f"{self.clip_id(i)}-q{k}", "clip": i, **self.questions(i)[k]}
        rec = {"id": self.clip_id(idx), "clip": idx, "meta": {"track": self.track(idx), "split": self.split}}
        if self.task == "caption":
            return {**rec, "text": self.caption(idx)}
        qs, rng = self.questions(idx), self._rng(idx, 2)
        turns = [(f"{qs[int(k)]['question']} {SHORT_ANSWER}", qs[int(k)]["answer"]) for k in rng.permutation(len(qs))]
        if self.describe:
            turns.insert(int(rng.integers(len(turns) + 1)), (DESCRIBE, self.caption(idx)))
        convo = []
        for t, (ask, answer) in enumerate(turns):
            convo.append({"from": "human", "value": ("<video>\n" + ask) if t == 0 else ask})
            convo.append({"from": "gpt", "value": answer})
        return {**rec, "conversations": convo}

    def __getitem__(self, idx: int) -> dict:
        rec = self.record(idx)
        rec["video"] = self.render_clip(rec.pop("clip"))
        return rec

    def texts(self):
        for idx in range(len(self)):
            yield from record_texts(self.record(idx))
