"""POPE question sets (Li et al. 2023) over the shapes world: per image, present and absent "colour shape" objects.

Absent objects come from three samplers: `random` (uniform over the vocabulary minus what is present), `popular`
(most frequent in the split, counted once per scene), `adversarial` (co-occurring most often with the scene's present
objects in the split). Ties break by split frequency, then vocabulary order, so the sets are deterministic.
"""

from __future__ import annotations

from collections import Counter

from .scenes import present_objects
from .vocab import object_names

SAMPLERS = ("random", "popular", "adversarial")
QUESTION = "Is there a {obj} in the image?"


class PopeStats:
    """Per-split object frequency and pairwise co-occurrence (counts of scenes)."""

    def __init__(self, scenes):
        self.frequency: Counter = Counter()
        self.cooccur: dict[str, Counter] = {}
        for scene in scenes:
            present = present_objects(scene)
            self.frequency.update(present)
            for a in present:
                row = self.cooccur.setdefault(a, Counter())
                row.update(b for b in present if b != a)
        self.vocabulary = object_names()
        self._order = {name: k for k, name in enumerate(self.vocabulary)}

    def popular(self, exclude: set[str], k: int) -> list[str]:
        ranked = sorted(self.vocabulary, key=lambda o: (-self.frequency[o], self._order[o]))
        return [o for o in ranked if o not in exclude][:k]

    def adversarial(self, present: list[str], k: int) -> list[str]:
        def score(o):
            return sum(self.cooccur.get(p, Counter())[o] for p in present)

        ranked = sorted(self.vocabulary, key=lambda o: (-score(o), -self.frequency[o], self._order[o]))
        return [o for o in ranked if o not in set(present)][:k]

    def cooccurrence_score(self, present: list[str], obj: str) -> int:
        return sum(self.cooccur.get(p, Counter())[obj] for p in present)


def pope_questions(scene: dict, rng, stats: PopeStats, samplers=SAMPLERS, k: int = 3) -> list[dict]:
    """[{"question", "answer", "object", "sampler"}]: per sampler k present (yes) then k absent (no) objects."""
    present = present_objects(scene)
    out = []
    for sampler in samplers:
        chosen = [present[int(j)] for j in rng.permutation(len(present))[:k]]
        if sampler == "random":
            pool = [o for o in stats.vocabulary if o not in set(present)]
            absent = [pool[int(j)] for j in rng.permutation(len(pool))[:k]]
        elif sampler == "popular":
            absent = stats.popular(set(present), k)
        elif sampler == "adversarial":
            absent = stats.adversarial(present, k)
        else:
            raise ValueError(f"unknown POPE sampler {sampler!r}; use {', '.join(SAMPLERS)}")
        for obj, answer in [(o, "yes") for o in chosen] + [(o, "no") for o in absent]:
            out.append({"question": QUESTION.format(obj=obj), "answer": answer, "object": obj, "sampler": sampler})
    return out
