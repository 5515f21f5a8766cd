"""Caption metrics: hand-computed BLEU / ROUGE-L / CIDEr-D cases and agreement with the pycocoevalcap scorers."""

import math

import pytest

from modalign.eval.metrics import bleu, caption_metrics, cider_d, rouge_l, tokenize


def test_bleu_hand_case():
    # unigrams 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3; equal lengths -> no brevity penalty
    b = bleu(["the cat sat on the mat"], [["the cat is on the mat"]])
    assert b[0] == pytest.approx(5 / 6)
    assert b[1] == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    assert b[2] == pytest.approx(0.5)
    assert b[3] == 0.0


def test_bleu_brevity_penalty_uses_closest_reference():
    b = bleu(["the cat"], [["the cat sat", "a cat sat on the mat"]])
    assert b[0] == pytest.approx(math.exp(1 - 3 / 2))


def test_rouge_l_hand_case():
    # LCS(a b c d, a c d e f) = 3: P = 3/4, R = 3/5
    p, r = 0.75, 0.6
    score, _per = rouge_l(["a b c d"], [["a c d e f"]])
    assert score == pytest.approx((1 + 1.44) * p * r / (r + 1.44 * p))


def test_cider_d_hand_case():
    # Two images with disjoint single references, each hypothesis equal to its reference: every n-gram has
    # df = 1, cosine 1 for n = 1..4, no length penalty -> 1 * 10.
    refs = [["a red ball on grass"], ["two blue cubes stacked high"]]
    _score, per = cider_d([r[0] for r in refs], refs)
    assert per == pytest.approx([10.0, 10.0])
    assert cider_d(["zebra zebra", "two blue cubes stacked high"], refs)[1][0] == 0.0


def test_tokenize():
    assert tokenize("A Dog, running!  Fast.") == "a dog running fast"


HYPS = [
    "a red circle above a blue square",
    "two green triangles",
    "a small yellow star left of a circle",
    "the blue square is big",
]
REFS = [
    ["a red circle is above a blue square", "red circle over blue square"],
    ["two green triangles next to each other", "a pair of green triangles", "green triangles"],
    ["a yellow star to the left of a red circle", "small star left of the circle"],
    ["a big blue square", "the square is blue and large", "one big blue square in the middle"],
]


def test_agrees_with_pycocoevalcap():
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: r for i, r in enumerate(REFS)}
    res = {i: [h] for i, h in enumerate(HYPS)}
    ref_bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert bleu(HYPS, REFS) == pytest.approx(ref_bleu, abs=1e-6)
    ref_rouge, ref_rouge_per = Rouge().compute_score(gts, res)
    mine, mine_per = rouge_l(HYPS, REFS)
    assert mine == pytest.approx(ref_rouge, abs=1e-6) and mine_per == pytest.approx(list(ref_rouge_per), abs=1e-6)
    ref_cider, ref_cider_per = Cider().compute_score(gts, res)
    mine, mine_per = cider_d(HYPS, REFS)
    assert mine == pytest.approx(ref_cider, abs=1e-6) and mine_per == pytest.approx(list(ref_cider_per), abs=1e-6)


def test_caption_metrics_keys_and_errors():
    m = caption_metrics(["A red circle."], [["a red circle", "red circle"]])
    assert set(m) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"}
    with pytest.raises(ValueError, match="at least one reference"):
        bleu(["x"], [[]])
