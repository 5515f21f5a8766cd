"""Layer 3: modality towers and their processors, found by name.

Vision: `vit` (from scratch), `efficientnet-lite0` (packaged ImageNet weights), `hf` (local CLIP/SigLIP/ViT dir).
Text: `transformer` (from scratch), `minilm` (packaged all-MiniLM-L6-v2), `hf` (local encoder dir).
Audio: `whisper-tiny`, `whisper-base` (packaged, frozen, CTranslate2), `conv` (from scratch: log-mel -> strided
temporal convolutions), `hf` (a local Whisper / wav2vec2 / HuBERT / AST / CLAP dir); the processor is
`audio_processor.py` (log-mel in `logmel.py`).
Video: `frames` (per-frame features of an image tower + learned temporal positions, video.py).
All: `modalign` (a tower out of a saved modalign model, `path=RUN/final`).
AnyRes tiling (LLaVA-1.6) lives in `tiling.py`.
"""

from modalign.registry import build_module

from .audio_conv import build_conv_audio
from .efficientnet import build_efficientnet_lite0
from .from_checkpoint import build_audio_from_checkpoint, build_text_from_checkpoint, build_vision_from_checkpoint
from .hf_audio import build_hf_audio
from .hf_vision import build_hf_vision
from .text import build_hf_text, build_minilm, build_transformer
from .video import build_video_frames
from .vit import build_vit
from .whisper import build_whisper_base, build_whisper_tiny

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
AUDIO_ENCODERS: dict = {
    "module": build_module,  # the user's own class (see models/parts.py)
    "whisper-tiny": build_whisper_tiny,
    "whisper-base": build_whisper_base,
    "conv": build_conv_audio,
    "hf": build_hf_audio,
    "modalign": build_audio_from_checkpoint,
}
VIDEO_ENCODERS: dict = {
    "module": build_module,  # the user's own class (see models/parts.py)
    "frames": build_video_frames,
}
