"""A world of non-speech sounds with ground truth: beeps, chirps and noise bursts of given pitch, length and order.

A clip (16 kHz, 1.5-5 s) holds 1 to `max_sounds` events in a row, each with
- a kind: `beep` (a pure tone), `chirp` (a sweep, `rising` or `falling` by an octave around its pitch) or `noise`
  (a burst of band-passed noise around its pitch);
- a pitch level `low` (250-330 Hz), `mid` (550-700 Hz) or `high` (1200-1500 Hz), the exact frequency drawn within;
- a length `short` (0.12-0.18 s) or `long` (0.35-0.5 s);
separated by 0.15-0.35 s of quiet, with a faint noise floor (-50 dB) under the whole clip. Levels are far apart, so
"higher" is never a matter of a few hertz: two events compare by their levels, and a question only compares two
events of different levels.

Tasks (`SoundWorld(task=...)`, dataset `sounds`): `caption` ({"id", "audio", "text"}: "a short high beep, then a
long low falling chirp"), `vqa` ({"id", "qid", "audio", "question", "answer", "qtype"}, several per clip), `instruct`
({"id", "audio", "conversations"}, the clip's questions as turns after one `<audio>`), `classify` (one event per
clip, {"id", "audio", "text", "label"} with `classnames` beep / chirp / noise burst, for zero-shot from text prompts).
Question types: `count` ("How many beeps are there?", "How many sounds are there?"), `higher` ("Is the second sound
higher than the first?"), `kind` ("What kind of sound is the third one?"), `length` ("Is the last sound short or
long?"). `meta["events"]` is the ground truth: kind, direction, level, hz, start and seconds of every event.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..audio_io import AUDIO_RATE
from .texts import record_texts

TASKS = ("caption", "vqa", "instruct", "classify")
KINDS = ("beep", "chirp", "noise")
KIND_WORDS = {"beep": "beep", "chirp": "chirp", "noise": "noise burst"}
LEVELS = {"low": (250.0, 330.0), "mid": (550.0, 700.0), "high": (1200.0, 1500.0)}
LENGTHS = {"short": (0.12, 0.18), "long": (0.35, 0.5)}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six")
QTYPES = ("count", "higher", "kind", "length")
SHORT_ANSWER = "Answer with a single word or phrase."
_SPLIT_CODE = {"train": 0, "test": 1, "heldout": 2}


def plural(word: str, n: int) -> str:
    return word if n == 1 else word + "es" if word.endswith("h") else word + "s"


def render_event(event: dict, rng) -> np.ndarray:
    """The samples of one event (a 5 ms fade in and out, so no event starts with a click)."""
    n = int(event["seconds"] * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    hz = event["hz"]
    if event["kind"] == "beep":
        wave = np.sin(2 * np.pi * hz * t)
    elif event["kind"] == "chirp":
        lo, hi = hz / np.sqrt(2), hz * np.sqrt(2)  # an octave, centred (geometrically) on the pitch
        f0, f1 = (lo, hi) if event["direction"] == "rising" else (hi, lo)
        k = np.log(f1 / f0) / event["seconds"]
        wave = np.sin(2 * np.pi * f0 * (np.exp(k * t) - 1) / k)  # exponential sweep: equal time per semitone
    else:
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / AUDIO_RATE)
        spec[(freqs < hz / 1.25) | (freqs > hz * 1.25)] = 0  # a band of +-1/3 octave around the pitch
        wave = np.fft.irfft(spec, n)
        wave /= np.abs(wave).max() + 1e-9
    fade = min(n // 2, int(0.005 * AUDIO_RATE))
    env = np.ones(n)
    env[:fade], env[n - fade :] = np.linspace(0, 1, fade), np.linspace(1, 0, fade)
    return (0.5 * wave * env).astype(np.float32)


def event_phrase(e: dict) -> str:
    kind = KIND_WORDS[e["kind"]]
    if e["kind"] == "chirp":
        kind = f"{e['direction']} chirp"
    return f"{e['length']} {e['level']} {kind}"


def caption(events: list[dict]) -> str:
    phrases = [("an " if event_phrase(e)[0] in "aeiou" else "a ") + event_phrase(e) for e in events]
    if len(phrases) == 1:
        return phrases[0]
    return ", then ".join([", ".join(phrases[:-1]), phrases[-1]])


def questions(events: list[dict], rng) -> list[dict]:
    """One question of each type the clip supports (see the module docstring), with its exact answer."""
    out = []
    if rng.random() < 0.4:
        q, a = "How many sounds are there?", len(events)
    else:
        kind = KINDS[int(rng.integers(len(KINDS)))]
        q, a = f"How many {plural(KIND_WORDS[kind], 2)} are there?", sum(e["kind"] == kind for e in events)
    out.append({"question": q, "answer": str(a), "qtype": "count"})
    pairs = [
        (i, j)
        for i in range(len(events))
        for j in range(len(events))
        if i < j and events[i]["level"] != events[j]["level"]
    ]
    if pairs:
        i, j = pairs[int(rng.integers(len(pairs)))]
        higher = LEVELS[events[j]["level"]][0] > LEVELS[events[i]["level"]][0]
        q = f"Is the {ORDINALS[j]} sound higher than the {ORDINALS[i]}?"
        out.append({"question": q, "answer": "yes" if higher else "no", "qtype": "higher"})
    k = int(rng.integers(len(events)))
    which = "last" if k == len(events) - 1 and len(events) > 1 else ORDINALS[k]
    out.append(
        {
            "question": f"What kind of sound is the {which} one?",
            "answer": KIND_WORDS[events[k]["kind"]],
            "qtype": "kind",
        }
    )
    k = int(rng.integers(len(events)))
    which = "last" if k == len(events) - 1 and len(events) > 1 else ORDINALS[k]
    out.append({"question": f"Is the {which} sound short or long?", "answer": events[k]["length"], "qtype": "length"})
    return out


class SoundWorld(Dataset):
    """Clips of beeps, chirps and noise bursts with their ground truth, captions and questions (module docstring).

    task: caption, vqa, instruct or classify. n: number of clips (vqa: several questions per clip).
    split: train, test or heldout: which random stream the clips come from (the same bytes for the same arguments).
    seed: clip i comes from the stream (seed, split, i), whatever n is.
    max_sounds: most events in a clip (1..6); classify clips hold one.
    """

    classnames = tuple(KIND_WORDS[k] for k in KINDS)  # what the zeroshot suite reads from the dataset
    templates = ("the sound of a {}.", "a {}.", "a recording of a {}.")

    def __init__(self, task: str = "caption", n: int = 1000, split: str = "train", seed: int = 0, max_sounds: int = 4):
        if task not in TASKS:
            raise ValueError(f"unknown sounds task {task!r}; choose one of {', '.join(TASKS)}")
        if split not in _SPLIT_CODE:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(_SPLIT_CODE)}")
        if not 1 <= max_sounds <= len(ORDINALS):
            raise ValueError(f"max_sounds must be 1..{len(ORDINALS)}, got {max_sounds}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.task, self.n, self.split, self.seed, self.max_sounds = task, n, split, seed, max_sounds
        self._index = None
        if task == "vqa":
            self._index = [(i, k) for i in range(n) for k in range(len(self._questions(i)))]

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else self.n

    def _rng(self, i: int, part: int):
        return np.random.default_rng([self.seed, 97, _SPLIT_CODE[self.split], i, part])

    def events(self, i: int) -> list[dict]:
        """The ground truth of clip i: its events in time order."""
        rng = self._rng(i, 0)
        count = 1 if self.task == "classify" else int(rng.integers(1, self.max_sounds + 1))
        t, events = float(rng.uniform(0.1, 0.3)), []
        for _ in range(count):
            kind = KINDS[int(rng.integers(len(KINDS)))]
            level = list(LEVELS)[int(rng.integers(len(LEVELS)))]
            length = list(LENGTHS)[int(rng.integers(len(LENGTHS)))]
            seconds = float(rng.uniform(*LENGTHS[length]))
            e = {"kind": kind, "level": level, "hz": round(float(rng.uniform(*LEVELS[level])), 1), "length": length}
            e.update(start=round(t, 4), seconds=round(seconds, 4), direction=None)
            if kind == "chirp":
                e["direction"] = "rising" if rng.random() < 0.5 else "falling"
            events.append(e)
            t += seconds + float(rng.uniform(0.15, 0.35))
        return events

    def _questions(self, i: int) -> list[dict]:
        return questions(self.events(i), self._rng(i, 1))

    def audio(self, i: int) -> np.ndarray:
        events, rng = self.events(i), self._rng(i, 2)
        end = events[-1]["start"] + events[-1]["seconds"] + float(rng.uniform(0.1, 0.3))
        clip = 0.003 * rng.standard_normal(int(end * AUDIO_RATE)).astype(np.float32)  # the noise floor
        for e in events:
            wave = render_event(e, rng)
            a = int(e["start"] * AUDIO_RATE)
            clip[a : a + len(wave)] += wave[: len(clip) - a]
        return clip

    def clip_id(self, i: int) -> str:
        return f"sounds-{self.split}-s{self.seed}-{i:06d}"

    def record(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(f"item {idx} out of range 0..{len(self) - 1}")
        if self._index is not None:
            i, k = self._index[idx]
            return {"id": self.clip_id(i), "qid": f"{self.clip_id(i)}-q{k}", "clip": i, **self._questions(i)[k]}
        events = self.events(idx)
        rec = {"id": self.clip_id(idx), "clip": idx, "meta": {"events": events, "split": self.split}}
        if self.task in ("caption", "classify"):
            rec["text"] = caption(events)
            if self.task == "classify":
                rec["label"] = KINDS.index(events[0]["kind"])
            return rec
        rng, convo, qs = self._rng(idx, 3), [], self._questions(idx)
        for t, q in enumerate(qs[int(k)] for k in rng.permutation(len(qs))):
            ask = f"{q['question']} {SHORT_ANSWER}"
            convo += [
                {"from": "human", "value": ("<audio>\n" + ask) if t == 0 else ask},
                {"from": "gpt", "value": q["answer"]},
            ]
        rec["conversations"] = convo
        return rec

    def __getitem__(self, idx: int) -> dict:
        rec = self.record(idx)
        rec["audio"] = self.audio(rec.pop("clip"))
        return rec

    def texts(self):
        for idx in range(len(self)):
            yield from record_texts(self.record(idx))
