"""Several datasets as one, each drawn with its own weight: the data mixture of a training stage.

`{name: mixture, parts: [{name: spoken, task: instruct, ...}, {name: spoken, task: caption, ...}], weights: [3, 1]}`
yields `n` items (default: the parts' lengths summed); item i comes from the part a seeded draw gives it (the
weights normalised), and each part's items are read in order, wrapping around when a part is shorter than its share.
Why: an instruct stage that also keeps a share of an earlier stage's data (captions, transcripts) does not forget
what that stage taught (LLaVA-1.5 keeps caption and text-only data in its instruct mix for the same reason). A batch
may hold items of both kinds: the VLM collates each sample by its own fields (`text` or `conversations`), and both
carry next-token labels, so a caption item in an instruct stage trains exactly as in a caption stage.

The draw depends only on `seed`, the weights and `n`, never on the order of reads, so a resumed run sees the same
items. `skip_bad` goes to every part that can skip bad records; `skipped` sums what they skipped.
"""

from __future__ import annotations

import inspect

import numpy as np
from torch.utils.data import Dataset


def _takes_skip_bad(builder) -> bool:
    params = inspect.signature(builder).parameters
    return "skip_bad" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Mixture(Dataset):
    def __init__(
        self, parts: list, weights: list | None = None, n: int | None = None, seed: int = 0, skip_bad: bool = False
    ):
        from ..registry import build
        from . import DATASETS

        if not isinstance(parts, list) or len(parts) < 2:
            raise ValueError("parts: give a list of at least two dataset specs, e.g. [{name: shapes, ...}, {...}]")
        for k, spec in enumerate(parts):
            if not isinstance(spec, dict) or "name" not in spec:
                raise ValueError(f"parts[{k}] must be a dataset spec with a name, got {spec!r}")
            if spec["name"] == "mixture":
                raise ValueError(f"parts[{k}] is itself a mixture: list its parts here instead")
        weights = [1.0] * len(parts) if weights is None else weights
        if len(weights) != len(parts):
            raise ValueError(f"weights: {len(weights)} given for {len(parts)} parts; give one per part")
        if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be non-negative numbers with a positive sum, got {weights}")
        self.parts = []
        for spec in parts:
            params = {k: v for k, v in spec.items() if k != "name"}
            builder = DATASETS.get(spec["name"])
            if skip_bad and builder is not None and _takes_skip_bad(builder) and "skip_bad" not in params:
                params["skip_bad"] = True
            self.parts.append(build(DATASETS, "dataset", spec["name"], **params))
        empty = [k for k, p in enumerate(self.parts) if len(p) == 0]
        if empty:
            raise ValueError(f"parts {empty} are empty; check their path / split / filters")
        total = sum(len(p) for p in self.parts)
        self.n = total if n is None else int(n)
        if self.n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        self.weights = np.asarray(weights, dtype=np.float64) / float(sum(weights))
        rng = np.random.default_rng([seed, 7919])
        self._part = rng.choice(len(self.parts), size=self.n, p=self.weights)
        # the k-th item drawn for a part reads that part's item k (mod its length)
        self._offset = np.zeros(self.n, dtype=np.int64)
        seen = np.zeros(len(self.parts), dtype=np.int64)
        for i, p in enumerate(self._part):
            self._offset[i] = seen[p] % len(self.parts[p])
            seen[p] += 1
        self.split = getattr(self.parts[0], "split", None)

    def __len__(self) -> int:
        return self.n

    def locate(self, idx: int) -> tuple[int, int]:
        """(part, index in that part) of item `idx`."""
        if not 0 <= idx < self.n:
            raise IndexError(f"item {idx} out of range 0..{self.n - 1}")
        return int(self._part[idx]), int(self._offset[idx])

    def __getitem__(self, idx: int) -> dict:
        part, i = self.locate(idx)
        return self.parts[part][i]

    @property
    def skipped(self) -> int:
        return sum(int(getattr(p, "skipped", 0)) for p in self.parts)

    def counts(self) -> list[int]:
        """How many of the n items each part gives."""
        return np.bincount(self._part, minlength=len(self.parts)).tolist()

    def texts(self):
        for p in self.parts:
            texts = getattr(p, "texts", None)
            if texts is not None:
                yield from texts()
