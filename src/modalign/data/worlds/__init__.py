"""Built-in worlds: generated data with ground truth, so that every claim about alignment can be checked.

- `shapes/`: scenes of coloured shapes with their scene graph, captions, conversations, VQA, POPE, probes,
  Winoground pairs, grounding and CHAIR items (`ShapesWorld`, dataset name `shapes`).
- `small_objects.py`: one tiny shape in a large image, readable only with tiling (`SmallObjects`, `small-objects`).
"""

from .shapes import ShapesWorld
from .small_objects import SmallObjects

__all__ = ["ShapesWorld", "SmallObjects"]
