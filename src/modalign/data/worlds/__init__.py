"""Built-in worlds: generated data with ground truth, so that every claim about alignment can be checked.

- `shapes/`: scenes of coloured shapes with their scene graph, captions, conversations, VQA, POPE, probes,
  Winoground pairs, grounding and CHAIR items (`ShapesWorld`, dataset name `shapes`).
- `small_objects.py`: one tiny shape in a large image, readable only with tiling (`SmallObjects`, `small-objects`).
- `spoken.py`: the shapes world read aloud by espeak-ng voices, some held out (`SpokenWorld`, `spoken`).
- `sounds.py`: beeps, chirps and noise bursts of given pitch, length and order (`SoundWorld`, `sounds`).
- `motion.py`: the shapes world in motion: objects that move, appear, disappear or change colour (`MotionWorld`,
  `motion`).
"""

from .motion import MotionWorld
from .shapes import ShapesWorld
from .small_objects import SmallObjects
from .sounds import SoundWorld
from .spoken import SpokenWorld

__all__ = ["MotionWorld", "ShapesWorld", "SmallObjects", "SoundWorld", "SpokenWorld"]
