"""Token grids: a tower's N tokens read as a square side x side grid of image cells (row-major)."""

from __future__ import annotations

import math


def square_side(n: int) -> int | None:
    """The side of a square grid of `n` tokens, or None if `n` is not a positive square."""
    side = math.isqrt(max(n, 0))
    return side if n > 0 and side * side == n else None
