"""Layer 3: modality towers and their processors, found by name.

Vision: `vit` (from scratch), `efficientnet-lite0` (packaged ImageNet weights), `hf` (local CLIP/SigLIP/ViT dir).
Text: `transformer` (from scratch), `minilm` (packaged all-MiniLM-L6-v2), `hf` (local encoder dir).
Both: `modalign` (a tower out of a saved modalign model, `path=RUN/final`).
AnyRes tiling (LLaVA-1.6) lives in `tiling.py`.
"""

from modalign.registry import build_module

from .efficientnet import build_efficientnet_lite0
from .from_checkpoint import build_text_from_checkpoint, build_vision_from_checkpoint
from .hf_vision import build_hf_vision
from .text import build_hf_text, build_minilm, build_transformer
from .vit import build_vit

VISION_ENCODERS: dict = {
    "module": build_module,  # the user's own class (see models/parts.py)
    "vit": build_vit,
    "efficientnet-lite0": build_efficientnet_lite0,
    "hf": build_hf_vision,
    "modalign": build_vision_from_checkpoint,
}
TEXT_ENCODERS: dict = {
    "module": build_module,  # the user's own class (see models/parts.py)
    "transformer": build_transformer,
    "minilm": build_minilm,
    "hf": build_hf_text,
    "modalign": build_text_from_checkpoint,
}
