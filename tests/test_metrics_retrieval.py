"""Hand-computed Recall@K in both directions, including several captions per image and tied scores."""

import numpy as np
import pytest

from modalign.eval.metrics import recall_at_k

SIM = np.array([[0.9, 0.1, 0.5, 0.2], [0.3, 0.8, 0.7, 0.1], [0.2, 0.3, 0.6, 0.4]])  # [3 images, 4 texts]
T2I = [0, 0, 1, 2]


def test_recall_hand_case():
    r = recall_at_k(SIM, T2I, ks=(1, 2, 5))
    # t2i ranks: text0 0, text1 2 (0.1 is the lowest of its column), text2 0, text3 0
    assert r["t2i_R@1"] == pytest.approx(3 / 4)
    assert r["t2i_R@2"] == pytest.approx(3 / 4)
    assert r["t2i_R@5"] == pytest.approx(1.0)
    # i2t: img0 has texts {0, 1}, text0 tops its row; img1 loses to text1; img2 loses to text2
    assert r["i2t_R@1"] == pytest.approx(1 / 3)
    assert r["i2t_R@2"] == pytest.approx(1.0)


def test_ties_count_against_the_ground_truth():
    r = recall_at_k(np.zeros((3, 3)), [0, 1, 2], ks=(1,))
    assert r["t2i_R@1"] == 0.0 and r["i2t_R@1"] == 0.0


def test_tied_own_captions_do_not_push_each_other_out():
    sim = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    r = recall_at_k(sim, [0, 0, 1], ks=(1,))
    assert r["i2t_R@1"] == 1.0


def test_bad_indices_are_explained():
    with pytest.raises(ValueError, match="one image index per text"):
        recall_at_k(SIM, [0, 1], ks=(1,))
