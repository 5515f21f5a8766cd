"""Hand-computed cases for the embedding-geometry metrics (modality gap, shift curve, align/uniform, kNN, CKA)."""

import math

import numpy as np
import pytest

from modalign.eval.metrics import (
    alignment,
    alignment_uniformity,
    clip_loss,
    gap_shift_curve,
    linear_cka,
    modality_gap,
    mutual_knn,
    pca_2d,
    uniformity,
)


def test_modality_gap_vector_and_norm_on_normalised_inputs():
    x = np.array([[2.0, 0.0], [0.0, 5.0]])  # normalised inside -> e1, e2
    y = np.array([[-1.0, 0.0], [0.0, -1.0]])
    gap, norm = modality_gap(x, y)
    np.testing.assert_allclose(gap, [1.0, 1.0])
    assert norm == pytest.approx(math.sqrt(2))


def test_modality_gap_rejects_unpaired():
    with pytest.raises(ValueError, match="equal shapes"):
        modality_gap(np.ones((3, 2)), np.ones((2, 2)))


def test_clip_loss_identity_pairs():
    # logits = s*I: each row's CE = log(e^s + 1) - s = log(1 + e^-s)
    x = np.eye(2)
    assert clip_loss(x, x, 1.0) == pytest.approx(math.log(1 + math.exp(-1)))
    assert clip_loss(x, x, 10.0) == pytest.approx(math.log(1 + math.exp(-10)))


def test_gap_shift_curve_closes_gap_at_half():
    # x_i = normalize(u_i + c), y_i = normalize(u_i - c) with c orthogonal to the u's: gap = sqrt(2) c, and
    # lambda = 0.5 maps both onto u_i exactly.
    u = np.eye(3)[:2]
    c = np.array([0.0, 0.0, 1.0])
    x, y = (u + c) / math.sqrt(2), (u - c) / math.sqrt(2)
    curve = gap_shift_curve(x, y, [0.0, 0.5], logit_scale=5.0)
    assert curve["gap_norm"][0] == pytest.approx(math.sqrt(2))
    assert curve["gap_norm"][1] == pytest.approx(0.0, abs=1e-12)
    assert curve["loss"][0] == pytest.approx(clip_loss(x, y, 5.0))
    assert curve["loss"][1] == pytest.approx(math.log(1 + math.exp(-5.0)))


def test_alignment_and_uniformity_hand_cases():
    x = np.array([[1.0, 0.0], [1.0, 0.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert alignment(x, y) == pytest.approx((0 + 2) / 2)
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(-8.0)
    pts = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])  # squared distances 4, 2, 2
    assert uniformity(pts) == pytest.approx(math.log((math.exp(-8) + 2 * math.exp(-4)) / 3))
    au = alignment_uniformity(pts[:2], pts[1:])
    assert au["uniformity_pooled"] == pytest.approx(uniformity(np.concatenate([pts[:2], pts[1:]])))
    assert set(au) == {"alignment", "uniformity_image", "uniformity_text", "uniformity_pooled"}


def test_mutual_knn_k1():
    a = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])  # neighbours 0->1, 1->0, 2->1
    b = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])  # neighbours 0->2, 1->2, 2->1
    assert mutual_knn(a, b, k=1) == pytest.approx(1 / 3)
    assert mutual_knn(a, a, k=2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="smaller k"):
        mutual_knn(a, b, k=10)


def test_linear_cka_hand_case_and_invariance():
    a, b = np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [3.0], [2.0]])
    # 1-d features: CKA = (a_c . b_c)^2 / (|a_c|^2 |b_c|^2) = 1 / (2 * 2)
    assert linear_cka(a, b) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    m = rng.normal(size=(8, 4))
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert linear_cka(m, 3.0 * m @ q) == pytest.approx(1.0)


def test_pca_2d_separates_the_two_modalities():
    x = np.array([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0]])
    y = np.array([[0.0, 0.1, 1.0], [0.0, -0.1, 1.0]])
    px, py, var = pca_2d(x, y)
    assert px.shape == py.shape == (2, 2)
    assert np.sign(px[:, 0]).tolist() == [np.sign(px[0, 0])] * 2 and np.sign(py[0, 0]) == -np.sign(px[0, 0])
    assert var[0] > 0.9
