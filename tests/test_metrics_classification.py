"""Hand-computed zero-shot weights, top-k, per-class recall, confusion matrix; the linear probe on easy clusters."""

import math

import numpy as np
import pytest

from modalign.eval.metrics import (
    class_weights,
    confusion_matrix,
    linear_probe,
    mean_per_class_recall,
    topk_accuracy,
    zeroshot_metrics,
)


def test_class_weights_normalise_before_and_after_mean():
    w = class_weights(np.array([[[2.0, 0.0], [0.0, 3.0]]]))  # templates normalised to e1, e2 -> mean -> normalise
    np.testing.assert_allclose(w, [[1 / math.sqrt(2), 1 / math.sqrt(2)]])


def test_topk_confusion_and_per_class_recall():
    logits = np.array([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0]])
    labels = np.array([0, 2, 0])
    assert topk_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert topk_accuracy(logits, labels, 2) == pytest.approx(2 / 3)
    m = confusion_matrix(logits.argmax(1), labels, 3)
    assert m.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    # class 0: 1 of 2, class 1 absent (skipped), class 2: 0 of 1
    assert mean_per_class_recall(logits.argmax(1), labels, 3) == pytest.approx(0.25)
    z = zeroshot_metrics(logits, labels)
    assert "top5" not in z and z["top1"] == pytest.approx(1 / 3)


def test_linear_probe_separates_clusters_and_reports_sweep():
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n) % 2
        centres = np.array([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
        return centres[y] * rng.uniform(0.5, 3, size=(n, 1)) + rng.normal(scale=0.3, size=(n, 3)), y

    (tx, ty), (vx, vy), (sx, sy) = split(20), split(10), split(10)
    r = linear_probe(tx, ty, vx, vy, sx, sy, cs=(0.1, 10.0))
    assert r["test_acc"] == 1.0 and r["best_C"] in (0.1, 10.0) and set(r["val_acc_by_C"]) == {"0.1", "10.0"}
    with pytest.raises(ValueError, match="2 classes"):
        linear_probe(tx, np.zeros(20), vx, vy, sx, sy)
