"""Zero-shot classification with prompt ensembles, top-k / per-class recall / confusion, and the linear probe.

Zero-shot weights follow open_clip: w_c = normalize(mean_t normalize(g(template_t(c)))), predict argmax_c f(x)·w_c.
The linear probe is logistic regression on frozen, L2-normalised features with C swept on a validation split.
"""

from __future__ import annotations

import numpy as np

from .geometry import l2_normalize


def class_weights(text_embeddings) -> np.ndarray:
    """text_embeddings: [C, T, E] (class, template) -> [C, E] ensemble weights."""
    t = np.asarray(text_embeddings, dtype=np.float64)
    if t.ndim != 3:
        raise ValueError(f"text_embeddings must be [classes, templates, dim], got shape {t.shape}")
    return l2_normalize(l2_normalize(t).mean(axis=1))


def _check_labels(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"need logits [N, C] and labels [N], got {logits.shape} and {labels.shape}")
    return logits, labels


def topk_accuracy(logits, labels, k: int = 1) -> float:
    """Fraction of rows whose label is among the k highest logits (ties broken against the label)."""
    logits, labels = _check_labels(logits, labels)
    true = logits[np.arange(len(labels)), labels]  # [N]
    ahead = (logits > true[:, None]).sum(1) + (logits == true[:, None]).sum(1) - 1
    return float((ahead < k).mean())


def confusion_matrix(preds, labels, n_classes: int) -> np.ndarray:
    """[n_classes, n_classes] counts; row = true class, column = predicted class."""
    preds, labels = np.asarray(preds, dtype=np.int64), np.asarray(labels, dtype=np.int64)
    if preds.shape != labels.shape:
        raise ValueError(f"preds {preds.shape} and labels {labels.shape} differ in shape")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (labels, preds), 1)
    return m


def mean_per_class_recall(preds, labels, n_classes: int) -> float:
    """Mean over classes present in `labels` of (correct in class / items in class)."""
    m = confusion_matrix(preds, labels, n_classes)
    support = m.sum(1)
    present = support > 0
    return float((np.diag(m)[present] / support[present]).mean())


def zeroshot_metrics(logits, labels) -> dict:
    """top-1, top-5 (only when there are more than 5 classes), mean per-class recall, confusion matrix."""
    logits, labels = _check_labels(logits, labels)
    n_classes = logits.shape[1]
    preds = logits.argmax(1)
    out = {
        "top1": topk_accuracy(logits, labels, 1),
        "mean_per_class_recall": mean_per_class_recall(preds, labels, n_classes),
        "confusion": confusion_matrix(preds, labels, n_classes).tolist(),
    }
    if n_classes > 5:
        out["top5"] = topk_accuracy(logits, labels, 5)
    return out


def linear_probe(
    train_x,
    train_y,
    val_x,
    val_y,
    test_x,
    test_y,
    cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    max_iter: int = 1000,
    seed: int = 0,
) -> dict:
    """Sweep C on the validation split, refit on train+val with the best C, report test accuracy."""
    from sklearn.linear_model import LogisticRegression

    tx, vx, sx = (l2_normalize(np.asarray(a, dtype=np.float64)) for a in (train_x, val_x, test_x))
    ty, vy, sy = (np.asarray(a, dtype=np.int64) for a in (train_y, val_y, test_y))
    if len(np.unique(ty)) < 2:
        raise ValueError("linear_probe needs at least 2 classes in the training split")
    sweep = {}
    for c in cs:
        clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed).fit(tx, ty)
        sweep[float(c)] = float((clf.predict(vx) == vy).mean())
    best = max(sweep, key=lambda c: (sweep[c], -c))  # ties go to the stronger regulariser (smaller C)
    clf = LogisticRegression(C=best, max_iter=max_iter, random_state=seed).fit(
        np.concatenate([tx, vx]), np.concatenate([ty, vy])
    )
    preds = clf.predict(sx)
    n_classes = int(max(ty.max(), vy.max(), sy.max()) + 1)
    return {
        "best_C": best,
        "val_acc_by_C": {str(k): v for k, v in sweep.items()},
        "val_acc": sweep[best],
        "test_acc": float((preds == sy).mean()),
        "mean_per_class_recall": mean_per_class_recall(preds, sy, n_classes),
    }
