"""POPE question sets (Li et al. 2023) over the shapes world: per image, present and absent "colour shape" objects.

Absent objects come from three samplers: `random` (uniform over the vocabulary minus what is present), `popular`
(most frequent in the split, counted once per scene), `adversarial` (co-occurring most often with the scene's present
objects in the split). Ties break by split frequency, then vocabulary order, so the sets are deterministic.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .language import with_article
from .scenes import present_objects
from .vocab import object_names

SAMPLERS = ("random", "popular", "adversarial")
QUESTION = "Is there {obj} in the image?"  # obj with its article: "a red star", "an orange star"


class PopeStats:
    """Per-split object frequency and pairwise co-occurrence (counts of scenes), as arrays over the vocabulary."""

    def __init__(self, scenes):
        self.vocabulary = object_names()
        self._order = {name: k for k, name in enumerate(self.vocabulary)}
        v = len(self.vocabulary)
        self.frequency_array = np.zeros(v, dtype=np.int64)  # [V] scenes containing each object
        self.cooccur_array = np.zeros((v, v), dtype=np.int64)  # [V, V] scenes containing both (diagonal 0)
        for scene in scenes:
            ks = [self._order[o] for o in present_objects(scene)]
            self.frequency_array[ks] += 1
            self.cooccur_array[np.ix_(ks, ks)] += 1
        np.fill_diagonal(self.cooccur_array, 0)
        self.frequency = Counter({o: int(f) for o, f in zip(self.vocabulary, self.frequency_array) if f})
        # Popular ranking is the same for every image: compute it once (ties by vocabulary order).
        self._popular = [self.vocabulary[k] for k in np.lexsort((np.arange(v), -self.frequency_array))]

    def popular(self, exclude: set[str], k: int) -> list[str]:
        return [o for o in self._popular if o not in exclude][:k]

    def cooccurrence_score(self, present: list[str]) -> np.ndarray:
        """[V] summed co-occurrence of every vocabulary object with the present ones."""
        return self.cooccur_array[[self._order[p] for p in present]].sum(axis=0)

    def adversarial(self, present: list[str], k: int) -> list[str]:
        score = self.cooccurrence_score(present)
        ranked = np.lexsort((np.arange(len(score)), -self.frequency_array, -score))
        exclude = set(present)
        return [o for o in (self.vocabulary[j] for j in ranked) if o not in exclude][:k]


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
            out.append(
                {
                    "question": QUESTION.format(obj=with_article(obj)),
                    "answer": answer,
                    "object": obj,
                    "sampler": sampler,
                }
            )
    return out
