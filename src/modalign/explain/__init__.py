"""Layer 7: explaining alignment - which image regions drove which words.

- `explain(model, image, text, method=...)` (api.py): per word / phrase / text, a map over the vision tower's patch
  grid and its peak, for a VisionLanguageModel (attention rollout through LM and connector, or gradient x input)
  or a DualEncoder (gradient x input of the image-text cosine).
- rollout.py: Abnar & Zuidema's rollout, and its version for query-based connectors; connector_map.py: LM image
  positions -> patches per connector.
- overlay.py: upsampled heat-map overlays as PNG, peaks in image pixels.
- hits.py: the pointing game (hit rate vs chance) on the shapes world.
- cli.py: `modalign explain CHECKPOINT --image P --text "..."`.
"""

from .api import Attribution, explain
from .hits import hit_rate, pointing_game, pointing_items
from .overlay import overlay, peak_cell, peak_point, save_overlay
from .rollout import attention_rollout, resampler_rollout

__all__ = [
    "Attribution",
    "attention_rollout",
    "explain",
    "hit_rate",
    "overlay",
    "peak_cell",
    "peak_point",
    "pointing_game",
    "pointing_items",
    "resampler_rollout",
    "save_overlay",
]
