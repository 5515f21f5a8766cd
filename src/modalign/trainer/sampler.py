"""A deterministic, resumable stream of sample indices, cut into global batches and sharded across ranks.

The stream is the concatenation of per-epoch permutations, each drawn from (seed, epoch) alone, so any position
(epoch, index) can be reproduced without replaying the past: a resumed run continues exactly where it stopped,
mid-epoch included. A global batch may cross an epoch boundary, so every batch is full (no dropped tail, no short
last batch whose loss would weigh its examples differently).

Sharding is by slicing the global batch: rank r takes the r-th contiguous block, then splits it into grad_accum
micro-batches. The union over ranks and micro-batches is the global batch in stream order, which is what makes a
2-process run equal a 1-process run on the same global batch.
"""

from __future__ import annotations

import numpy as np


class ResumableSampler:
    def __init__(self, num_samples: int, seed: int, stream: int = 0, shuffle: bool = True):
        if num_samples <= 0:
            raise ValueError("the dataset is empty: a stage needs at least one sample (check its `data:` params)")
        self.num_samples = num_samples
        self.seed = int(seed)
        self.stream = int(stream)  # e.g. the stage index: independent orders for datasets of one recipe
        self.shuffle = shuffle
        self.epoch = 0
        self.index = 0  # position inside the current epoch's permutation
        self._perm_epoch: int | None = None
        self._perm: np.ndarray | None = None

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of epoch `epoch`; a pure function of (seed, stream, epoch)."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        if self._perm_epoch != epoch:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.stream, epoch]))
            self._perm = rng.permutation(self.num_samples)
            self._perm_epoch = epoch
        return self._perm

    def next_global_batch(self, batch_size: int) -> list[int]:
        """The next `batch_size` indices of the stream; advances the position."""
        out: list[int] = []
        while len(out) < batch_size:
            perm = self.permutation(self.epoch)
            take = min(batch_size - len(out), self.num_samples - self.index)
            out.extend(int(i) for i in perm[self.index : self.index + take])
            self.index += take
            if self.index == self.num_samples:
                self.epoch += 1
                self.index = 0
        return out

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed, "num_samples": self.num_samples}

    def load_state_dict(self, state: dict) -> None:
        if state["num_samples"] != self.num_samples or state["seed"] != self.seed:
            raise ValueError(
                f"checkpoint was taken on a dataset of {state['num_samples']} samples with seed {state['seed']}, "
                f"but this run has {self.num_samples} samples with seed {self.seed}: resume with the same recipe"
            )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])


def shard(global_batch: list[int], rank: int, world_size: int, grad_accum: int) -> list[list[int]]:
    """This rank's micro-batches: block `rank` of the global batch, split into `grad_accum` equal parts."""
    n = len(global_batch)
    if n % (world_size * grad_accum):
        raise ValueError(
            f"a global batch of {n} does not split into {world_size} ranks x {grad_accum} micro-batches: "
            f"make batch_size a multiple of {world_size * grad_accum}"
        )
    per_rank = n // world_size
    mine = global_batch[rank * per_rank : (rank + 1) * per_rank]
    micro = per_rank // grad_accum
    return [mine[k * micro : (k + 1) * micro] for k in range(grad_accum)]
