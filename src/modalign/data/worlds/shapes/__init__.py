"""The shapes world: scene graphs (scenes.py) drawn as images (render.py), described in words (language.py, vocab.py),
questioned (vqa.py, pope.py, grounding.py), probed (probes.py) and split so that some colour-shape pairs are never
seen in training (splits.py). `ShapesWorld` (world.py) is the torch Dataset over all of it."""

from .world import ShapesWorld, regions

__all__ = ["ShapesWorld", "regions"]
