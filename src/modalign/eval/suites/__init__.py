"""Evaluation suites by name: `SUITES[name](model, dataset, **params) -> dict`.

Every suite returns {"suite", "metrics" (flat numbers), "settings" (prompt, parser, split, seed, model hash ...),
and optionally "figures" (raw data the report draws) and "samples" (gallery rows)}. All values are JSON-ready.
"""

from .audio import audio_retrieval
from .embedding import geometry, linear_probe, retrieval, zeroshot
from .generative import caption, chair, grounding, pope, vqa
from .multiple_choice import multiple_choice
from .probes import compositional, winoground
from .speech import spoken_vqa, transcription
from .video import temporal

SUITES = {
    "retrieval": retrieval,
    "zeroshot": zeroshot,
    "geometry": geometry,
    "linear_probe": linear_probe,
    "caption": caption,
    "vqa": vqa,
    "pope": pope,
    "chair": chair,
    "compositional": compositional,
    "winoground": winoground,
    "grounding": grounding,
    "multiple_choice": multiple_choice,
    "audio_retrieval": audio_retrieval,
    "spoken_vqa": spoken_vqa,
    "transcription": transcription,
    "temporal": temporal,
}

__all__ = ["SUITES", *SUITES]
