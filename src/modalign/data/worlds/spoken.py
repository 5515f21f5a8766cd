"""The shapes world said aloud: espeak-ng reads its captions and questions in several voices and speeds.

`SpokenWorld(task=..., n=..., split=..., voices=...)` (dataset `spoken`) wraps a `ShapesWorld` of the same split and
seed and adds speech (data/speech.py, cached on disk):
- `caption`: `{"id", "audio", "text"}` — a short caption of scene i and a voice reading it (CLAP pairs; the text
  is also the clip's transcript);
- `vqa`: `{"id", "qid", "image", "question", "question_audio", "answer", "qtype"}` — the shapes VQA questions, each
  also spoken (`question_audio` says `question`), for asking the same question as text and as speech (the
  `spoken_vqa` suite);
- `instruct`: `{"id", "image", "audios", "conversations"}` — the shapes world's conversation about the image (up to
  `max_turns - 1` VQA turns and a description), each question or request spoken with probability `spoken_p`: its
  human turn is then `<audio>` (plus the short-answer instruction when the answer is bare) and the clip goes into
  `audios`, in turn order.

Voices: `voices="train"` draws from TRAIN_VOICES, `"heldout"` from HELDOUT_VOICES (accents and variants never heard
in training), or a list of espeak-ng voice names; `"auto"` is train voices for the train splits and held-out voices
otherwise. Each item draws its voice, speed (words per minute in `speeds`) and pitch from its own random stream.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..speech import Voice, synthesize
from .shapes import ShapesWorld
from .shapes.render import render
from .shapes.vqa import SHORT_ANSWER, conversation

TASKS = ("caption", "vqa", "instruct")
TRAIN_VOICES = ("en-us", "en-us+m3", "en-us+f2", "en-gb", "en-gb+m7", "en-gb-x-rp+f4")
HELDOUT_VOICES = ("en-us+klatt2", "en-gb-x-gbcwmd", "en-us+f5")
_STREAM = 71  # this world's own random stream next to the shapes world's


def voice_pool(voices, split: str) -> tuple[str, ...]:
    if voices == "auto":
        voices = "train" if split in ("train", "confounded-train") else "heldout"
    if voices == "train":
        return TRAIN_VOICES
    if voices == "heldout":
        return HELDOUT_VOICES
    pool = (voices,) if isinstance(voices, str) else tuple(voices)  # one voice name, or a list of them
    if not pool:
        raise ValueError("voices: give train, heldout, auto or a list of espeak-ng voice names")
    return pool


class SpokenWorld(Dataset):
    """Shapes-world captions and questions read by espeak-ng voices (see the module docstring).

    task: caption (spoken captions), vqa (questions as text and speech) or instruct (conversations, some turns spoken).
    n: number of scenes. split, seed, image_size, max_objects: as the shapes world's.
    voices: train, heldout, auto (train voices for train splits, held-out ones otherwise) or a list of voice names.
    speeds: (slowest, fastest) words per minute; each clip draws one.
    max_turns: instruct: turns per conversation (VQA turns + one description). short_p: probability of a bare answer.
    spoken_p: instruct: probability that a question is spoken rather than written.
    """

    def __init__(
        self,
        task: str = "caption",
        n: int = 1000,
        split: str = "train",
        seed: int = 0,
        voices="auto",
        speeds=(140, 190),
        image_size: int = 64,
        max_objects: int = 4,
        max_turns: int = 4,
        short_p: float = 0.5,
        spoken_p: float = 0.5,
    ):
        if task not in TASKS:
            raise ValueError(f"unknown spoken task {task!r}; choose one of {', '.join(TASKS)}")
        if not 0 <= spoken_p <= 1 or not 0 <= short_p <= 1:
            raise ValueError("spoken_p and short_p are probabilities in [0, 1]")
        lo, hi = (int(s) for s in speeds)
        if not 80 <= lo <= hi <= 450:
            raise ValueError(f"speeds must be (slowest, fastest) words per minute within 80-450, got {speeds}")
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        shapes_task = {"caption": "caption", "vqa": "vqa", "instruct": "caption"}[task]
        self.world = ShapesWorld(
            task=shapes_task, n=n, split=split, seed=seed, image_size=image_size, max_objects=max_objects
        )
        self.task, self.n, self.split, self.seed = task, n, split, seed
        self.voices, self.speeds = voice_pool(voices, split), (lo, hi)
        self.max_turns, self.short_p, self.spoken_p = max_turns, short_p, spoken_p

    def __len__(self) -> int:
        return len(self.world) if self.task == "vqa" else self.n

    def _rng(self, idx: int, part: int = 0):
        return np.random.default_rng([self.seed, _STREAM, self.world._code, idx, part])

    def voice(self, rng) -> Voice:
        name = self.voices[int(rng.integers(len(self.voices)))]
        return Voice(name, int(rng.integers(self.speeds[0], self.speeds[1] + 1)), int(rng.integers(35, 66)))

    def record(self, idx: int) -> dict:
        """The item without audio or pixels: texts, the voice of each clip and the scene index."""
        if not 0 <= idx < len(self):
            raise IndexError(f"item {idx} out of range 0..{len(self) - 1}")
        rng = self._rng(idx)
        if self.task == "caption":
            text = self.world.record(idx)["text"]
            rec = {"id": f"spoken-{self.split}-s{self.seed}-{idx:06d}", "text": text, "scene_index": idx}
            return {**rec, "voices": [self.voice(rng)], "said": [text]}
        if self.task == "vqa":
            rec = self.world.record(idx)
            return {**rec, "voices": [self.voice(rng)], "said": [rec["question"]]}
        scene = self.world.scene(idx)
        # the shapes world's own conversation (VQA turns and a description), some of its questions said aloud
        turns = conversation(scene, self.world._rng(idx, 5), self.max_turns, self.short_p, self.world.rule.allowed)
        convo, said, voices = [], [], []
        for t in turns:
            value = t["value"]
            if t["from"] == "human" and rng.random() < self.spoken_p:
                lead = "<image>\n" if value.startswith("<image>\n") else ""
                question = value[len(lead) :]
                suffix = f" {SHORT_ANSWER}" if question.endswith(SHORT_ANSWER) else ""
                said.append(question[: len(question) - len(suffix)].strip())
                voices.append(self.voice(rng))
                value = f"{lead}<audio>{suffix}"
            convo.append({"from": t["from"], "value": value})
        rec = {"id": self.world.image_id(idx), "scene_index": idx, "conversations": convo}
        return {**rec, "voices": voices, "said": said}

    def __getitem__(self, idx: int) -> dict:
        rec = self.record(idx)
        clips = [synthesize(text, v) for text, v in zip(rec.pop("said"), rec.pop("voices"))]
        i = rec.pop("scene_index")
        if self.task == "caption":
            return {**rec, "audio": clips[0], "meta": {"split": self.split}}
        item = {**rec, "image": render(self.world.scene(i))}
        if self.task == "vqa":
            item["question_audio"] = clips[0]  # not `audio`: the question, not something the question is about
        elif clips:
            item["audios"] = clips
        return item

    def texts(self):
        for idx in range(len(self)):
            rec = self.record(idx)
            if self.task == "caption":
                yield rec["text"]
            elif self.task == "vqa":
                yield rec["question"]
                yield rec["answer"]
            else:
                yield from (t["value"] for t in rec["conversations"])
                yield from rec["said"]
