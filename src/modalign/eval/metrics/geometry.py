"""Geometry of a shared embedding space: modality gap, gap-shift curve, alignment/uniformity, mutual kNN, linear CKA.

Pure numpy functions on paired embeddings (row i of `x` is the image of pair i, row i of `y` its text).
Definitions: /work/shared/EVAL_REFERENCE.md (Liang et al. 2022; Wang & Isola 2020; Huh et al. 2024).
"""

from __future__ import annotations

import numpy as np


def _as_2d(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [N, D] array, got shape {a.shape}")
    return a


def _paired(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_2d(x, "x"), _as_2d(y, "y")
    if x.shape != y.shape:
        raise ValueError(f"paired embeddings need equal shapes, got x {x.shape} and y {y.shape}")
    return x, y


def l2_normalize(a, eps: float = 1e-12) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), eps)


def modality_gap(x, y) -> tuple[np.ndarray, float]:
    """gap = mean(normalize(x)) - mean(normalize(y)); returns (gap vector [D], its L2 norm)."""
    x, y = _paired(x, y)
    gap = l2_normalize(x).mean(0) - l2_normalize(y).mean(0)  # [D]
    return gap, float(np.linalg.norm(gap))


def clip_loss(x, y, logit_scale: float) -> float:
    """Symmetric InfoNCE 1/2 [CE(s XY^T, I) + CE(s YX^T, I)] on normalised rows (the loss the gap is judged by)."""
    x, y = _paired(x, y)
    logits = logit_scale * l2_normalize(x) @ l2_normalize(y).T  # [N, N]

    def ce_diag(m: np.ndarray) -> float:
        m = m - m.max(axis=1, keepdims=True)  # stable log-sum-exp
        logz = np.log(np.exp(m).sum(axis=1))
        return float((logz - np.diag(m)).mean())

    return 0.5 * (ce_diag(logits) + ce_diag(logits.T))


def gap_shift_curve(x, y, lambdas, logit_scale: float) -> dict:
    """Shift experiment: x' = normalize(x - l*gap), y' = normalize(y + l*gap); loss and gap norm per lambda.

    lambda = 0 is the trained embedding; lambda = 0.5 moves both means (approximately) onto each other.
    """
    x, y = _paired(x, y)
    xn, yn = l2_normalize(x), l2_normalize(y)
    gap, _ = modality_gap(xn, yn)
    losses, norms = [], []
    for lam in lambdas:
        xs = l2_normalize(xn - lam * gap)  # [N, D]
        ys = l2_normalize(yn + lam * gap)  # [N, D]
        losses.append(clip_loss(xs, ys, logit_scale))
        norms.append(modality_gap(xs, ys)[1])
    return {
        "lambdas": [float(v) for v in lambdas],
        "loss": losses,
        "gap_norm": norms,
        "logit_scale": float(logit_scale),
    }


def alignment(x, y, alpha: float = 2.0) -> float:
    """L_align = E_pos ||f(x) - f(y)||^alpha over positive pairs (normalised features)."""
    x, y = _paired(x, y)
    d = np.linalg.norm(l2_normalize(x) - l2_normalize(y), axis=1)  # [N]
    return float((d**alpha).mean())


def uniformity(x, t: float = 2.0) -> float:
    """L_unif = log E_{i != j} exp(-t ||f(x_i) - f(x_j)||^2) over distinct pairs of normalised features."""
    x = l2_normalize(_as_2d(x, "x"))
    n = x.shape[0]
    if n < 2:
        raise ValueError("uniformity needs at least 2 embeddings")
    sq = np.maximum(2.0 - 2.0 * (x @ x.T), 0.0)  # [N, N] squared distances of unit vectors
    iu = np.triu_indices(n, k=1)
    v = -t * sq[iu]
    m = v.max()
    return float(m + np.log(np.exp(v - m).mean()))


def alignment_uniformity(x, y) -> dict:
    """The Wang & Isola pair for a paired set: alignment, uniformity per modality and pooled over both."""
    x, y = _paired(x, y)
    return {
        "alignment": alignment(x, y),
        "uniformity_image": uniformity(x),
        "uniformity_text": uniformity(y),
        "uniformity_pooled": uniformity(np.concatenate([x, y], 0)),
    }


def _knn(a: np.ndarray, k: int) -> np.ndarray:
    sim = a @ a.T  # [N, N]
    np.fill_diagonal(sim, -np.inf)  # self excluded
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]  # [N, k]


def mutual_knn(a, b, k: int = 10) -> float:
    """mean_i |N_A(i) ∩ N_B(i)| / k, neighbours by inner product of normalised features, self excluded."""
    a, b = _as_2d(a, "a"), _as_2d(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"mutual_knn needs the same N rows in both, got {a.shape[0]} and {b.shape[0]}")
    if not 0 < k < a.shape[0]:
        raise ValueError(f"k={k} must be in [1, N-1] for N={a.shape[0]}; pass a smaller k")
    na, nb = _knn(l2_normalize(a), k), _knn(l2_normalize(b), k)
    overlap = [len(set(na[i]) & set(nb[i])) for i in range(a.shape[0])]
    return float(np.mean(overlap) / k)


def linear_cka(a, b) -> float:
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = AA^T, L = BB^T, HSIC = tr(KHLH), H = I - 11^T/n."""
    a, b = _as_2d(a, "a"), _as_2d(b, "b")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"linear_cka needs the same N rows in both, got {a.shape[0]} and {b.shape[0]}")
    n = a.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n  # [N, N] centring matrix
    k, l_ = a @ a.T, b @ b.T

    def hsic(p, q):
        return float(np.trace(p @ h @ q @ h))

    denom = np.sqrt(hsic(k, k) * hsic(l_, l_))
    if denom == 0:
        raise ValueError("linear_cka is undefined for a constant representation (zero variance)")
    return hsic(k, l_) / denom


def pca_2d(x, y) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Project normalised image and text embeddings on the top-2 principal axes of both together (gap figure)."""
    x, y = _paired(x, y)
    z = np.concatenate([l2_normalize(x), l2_normalize(y)], 0)  # [2N, D]
    zc = z - z.mean(0)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    p = zc @ vt[:2].T  # [2N, 2]
    if p.shape[1] < 2:
        p = np.pad(p, ((0, 0), (0, 2 - p.shape[1])))
    var = (s**2) / max((s**2).sum(), 1e-12)
    return p[: len(x)], p[len(x) :], [float(v) for v in var[:2]]
