"""Readers for the field's benchmark files in their published layouts, one module per format.

`BENCHMARKS[name](**params)` builds a dataset whose items are what the matching eval suite reads (docs/EVAL.md has a
worked example of each). Every reader lists its input files in `source_files` (eval results pin them by sha256),
names bad records by file and line or skips and counts them with `skip_bad=True`, and refuses image paths that
leave the image folder.
"""

from .aro import AroVisualGenome
from .coco_captions import CocoCaptions
from .coco_chair import CocoChair
from .karpathy import KarpathyCaptions
from .multiple_choice import MultipleChoice
from .pope import PopeQuestions
from .qa import QAFile
from .sugarcrepe import SugarCrepe
from .synonyms import read_synonyms
from .vqav2 import VQAv2
from .winoground import Winoground

BENCHMARKS: dict = {
    "vqav2": VQAv2,
    "qa": QAFile,
    "pope": PopeQuestions,
    "coco-captions": CocoCaptions,
    "karpathy": KarpathyCaptions,
    "coco-chair": CocoChair,
    "sugarcrepe": SugarCrepe,
    "aro": AroVisualGenome,
    "winoground": Winoground,
    "mmbench": MultipleChoice,
    "multiple-choice": MultipleChoice,
}

__all__ = [
    "BENCHMARKS",
    "AroVisualGenome",
    "CocoCaptions",
    "CocoChair",
    "KarpathyCaptions",
    "MultipleChoice",
    "PopeQuestions",
    "QAFile",
    "SugarCrepe",
    "VQAv2",
    "Winoground",
    "read_synonyms",
]
