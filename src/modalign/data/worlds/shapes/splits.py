"""Which objects each split may contain: i.i.d., held-out compositions (CoGenT-style), confounded (CLEVR-Hans-style).

- `train` / `test`: every colour-shape pair except the held-out ones (test is an i.i.d. sample from a different
  random stream).
- `heldout`: every scene contains at least one held-out colour-shape pair; each held-out colour and shape is seen in
  training, only never together.
- `confounded-train`: two shortcuts a model can learn: squares are always red and red is only ever on squares
  (attribute tied to a shape), and a star never appears without a circle (co-occurrence).
- `confounded-test`: both ties broken: squares are never red, and stars never share a scene with a circle.
`cooccurrence(scenes)` counts what actually co-occurs; it is written beside generated confounded data.
"""

from __future__ import annotations

from collections import Counter

from .vocab import COLOR_NAMES, SHAPES, SIZES

SPLITS = ("train", "test", "heldout", "confounded-train", "confounded-test")
SPLIT_CODE = {name: k for k, name in enumerate(SPLITS)}  # part of every scene's random seed


def default_heldout_pairs() -> list[tuple[str, str]]:
    """One held-out shape per colour, a different one each (a Latin-square diagonal): (colour, shape) pairs."""
    return [(c, SHAPES[(3 * k + 1) % len(SHAPES)]) for k, c in enumerate(COLOR_NAMES)]


CONFOUND_SHAPE, CONFOUND_COLOR = "square", "red"  # attribute tied to a shape in confounded-train
CONFOUND_WITH, CONFOUND_NEEDS = "star", "circle"  # a star always comes with a circle in confounded-train


class SplitRule:
    """Samples (shape, colour, size) lists for one split."""

    def __init__(self, split: str, heldout_pairs=None):
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        self.split = split
        pairs = [tuple(p) for p in (heldout_pairs if heldout_pairs is not None else default_heldout_pairs())]
        for c, s in pairs:
            if c not in COLOR_NAMES or s not in SHAPES:
                raise ValueError(
                    f"held-out pair ({c!r}, {s!r}) is not a (colour, shape) of the vocabulary: "
                    f"colours {COLOR_NAMES}, shapes {SHAPES}"
                )
        self.heldout_pairs = set(pairs)
        every = [(c, s) for c in COLOR_NAMES for s in SHAPES]
        if split in ("train", "test"):
            self.allowed = [p for p in every if p not in self.heldout_pairs]
        elif split == "heldout":
            self.allowed = every
        elif split == "confounded-train":
            self.allowed = [(c, s) for c, s in every if (s == CONFOUND_SHAPE) == (c == CONFOUND_COLOR)]
        else:
            self.allowed = [(c, s) for c, s in every if not (s == CONFOUND_SHAPE and c == CONFOUND_COLOR)]
        self._colors_for = {s: [c for c, s2 in self.allowed if s2 == s] for s in SHAPES}

    def _pair(self, rng, pool=None) -> tuple[str, str]:
        if pool is None:
            # Shape first, then a colour allowed with it: shapes stay uniform however few colours a shape may take
            # (in confounded-train squares are still 1/8 of objects, all red).
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            colors = self._colors_for[shape]
            return colors[int(rng.integers(len(colors)))], shape
        return pool[int(rng.integers(len(pool)))]

    def sample(self, rng, n: int) -> list[tuple[str, str, str]]:
        """n (shape, colour, size) triples allowed by the split."""
        pairs = [self._pair(rng) for _ in range(n)]
        if self.split == "heldout" and not any(p in self.heldout_pairs for p in pairs):
            pairs[int(rng.integers(n))] = self._pair(rng, sorted(self.heldout_pairs))
        elif self.split == "confounded-train":
            shapes = [s for _, s in pairs]
            if CONFOUND_WITH in shapes and CONFOUND_NEEDS not in shapes:
                circles = [p for p in self.allowed if p[1] == CONFOUND_NEEDS]
                others = [k for k, s in enumerate(shapes) if s != CONFOUND_WITH]
                if others:
                    pairs[others[int(rng.integers(len(others)))]] = self._pair(rng, circles)
                elif n > 1:
                    pairs[-1] = self._pair(rng, circles)
                else:  # a lone star cannot have company: make it another shape
                    pairs[0] = self._pair(rng, [p for p in self.allowed if p[1] != CONFOUND_WITH])
        elif self.split == "confounded-test":
            shapes = [s for _, s in pairs]
            if CONFOUND_WITH in shapes and CONFOUND_NEEDS in shapes:
                repl = [p for p in self.allowed if p[1] not in (CONFOUND_WITH, CONFOUND_NEEDS)]
                pairs = [self._pair(rng, repl) if s == CONFOUND_NEEDS else (c, s) for c, s in pairs]
        sizes = rng.integers(len(SIZES), size=n)
        return [(s, c, SIZES[int(z)]) for (c, s), z in zip(pairs, sizes)]


def cooccurrence(scenes) -> dict:
    """Per-scene presence counts: shape-shape co-occurrence, shape-colour pairs, and scenes per shape."""
    shape_pairs: dict[str, Counter] = {s: Counter() for s in SHAPES}
    shape_color: dict[str, Counter] = {s: Counter() for s in SHAPES}
    per_shape = Counter()
    n = 0
    for scene in scenes:
        n += 1
        shapes = {o["shape"] for o in scene["objects"]}
        per_shape.update(shapes)
        for a in shapes:
            shape_pairs[a].update(b for b in shapes if b != a)
        for c, s in {(o["color"], o["shape"]) for o in scene["objects"]}:
            shape_color[s][c] += 1
    return {
        "n_scenes": n,
        "scenes_with_shape": {s: per_shape[s] for s in SHAPES},
        "shape_cooccurrence": {a: {b: shape_pairs[a][b] for b in SHAPES if b != a} for a in SHAPES},
        "shape_color": {s: {c: shape_color[s][c] for c in COLOR_NAMES} for s in SHAPES},
    }
