"""Pure metric functions: arrays and strings in, numbers out. One module per family of measurements."""

from .captioning import bleu, caption_metrics, cider_d, rouge_l, tokenize
from .classification import (
    class_weights,
    confusion_matrix,
    linear_probe,
    mean_per_class_recall,
    topk_accuracy,
    zeroshot_metrics,
)
from .compositional import probe_accuracy, winoground_scores
from .geometry import (
    alignment,
    alignment_uniformity,
    clip_loss,
    gap_shift_curve,
    l2_normalize,
    linear_cka,
    modality_gap,
    mutual_knn,
    pca_2d,
    uniformity,
)
from .grounding import box_iou, grounding_accuracy, parse_box
from .hallucination import (
    chair,
    extract_objects,
    parse_yes_no,
    phrase_coverage,
    pope_from_likelihood,
    pope_metrics,
    singularize,
)
from .multiple_choice import choice_accuracy, parse_choice, rotate_options
from .retrieval import recall_at_k
from .vqa import any_match_accuracy, normalize_answer, vqa_accuracy, vqa_score
from .wer import edit_distance, normalize_transcript, word_error_rate

__all__ = [
    "alignment",
    "alignment_uniformity",
    "any_match_accuracy",
    "bleu",
    "box_iou",
    "caption_metrics",
    "chair",
    "choice_accuracy",
    "cider_d",
    "class_weights",
    "clip_loss",
    "confusion_matrix",
    "edit_distance",
    "extract_objects",
    "gap_shift_curve",
    "grounding_accuracy",
    "l2_normalize",
    "linear_cka",
    "linear_probe",
    "mean_per_class_recall",
    "modality_gap",
    "mutual_knn",
    "normalize_answer",
    "normalize_transcript",
    "parse_box",
    "parse_choice",
    "parse_yes_no",
    "pca_2d",
    "phrase_coverage",
    "pope_from_likelihood",
    "pope_metrics",
    "probe_accuracy",
    "recall_at_k",
    "rotate_options",
    "rouge_l",
    "singularize",
    "tokenize",
    "topk_accuracy",
    "uniformity",
    "vqa_accuracy",
    "vqa_score",
    "winoground_scores",
    "word_error_rate",
    "zeroshot_metrics",
]
