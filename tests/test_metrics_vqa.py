"""VQAv2 normalisation and the leave-one-annotator-out accuracy on hand-computed cases."""

import pytest

from modalign.eval.metrics import normalize_answer, vqa_accuracy, vqa_score


def test_normalisation_rules():
    assert normalize_answer("Two dogs!") == "2 dogs"
    assert normalize_answer("The cat.") == "cat"
    assert normalize_answer("isnt") == "isn't"
    assert normalize_answer("2.5") == "2.5"
    assert normalize_answer("1,000") == "1000"
    assert normalize_answer("black-and-white") == "black and white"


def test_leave_one_out_rule():
    # 2 of 10 annotators said "2": each of those sees 1 match (1/3), the other 8 see 2 (2/3) -> 0.6
    assert vqa_accuracy("two", ["2"] * 2 + ["3"] * 8) == pytest.approx(0.6)
    # 3 of 10: the three see 2 matches (2/3), the other 7 see 3 (1) -> 0.9
    assert vqa_accuracy("2", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy("2", ["2"] * 10) == 1.0
    assert vqa_accuracy("4", ["2"] * 10) == 0.0


def test_single_answer_is_normalised_exact_match():
    assert vqa_accuracy("A Circle.", ["circle"]) == 1.0
    assert vqa_accuracy("square", ["circle"]) == 0.0


def test_vqa_score_per_qtype():
    s = vqa_score(["red", "3", "no"], ["red", "three", "yes"], qtypes=["color", "count", "exist"])
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["per_qtype"] == {"color": 1.0, "count": 1.0, "exist": 0.0}


def test_accepted_alternatives_match_any_after_normalisation():
    from modalign.eval.metrics import any_match_accuracy

    assert any_match_accuracy("Crimson.", ["red", "crimson"]) == 1.0 and any_match_accuracy("blue", ["red"]) == 0.0
    # the same two answers read as annotators: each leave-one-out subset has one answer, so at most 1/3
    assert vqa_accuracy("crimson", ["red", "crimson"]) == pytest.approx((0 + 1 / 3) / 2)
    assert vqa_score(["crimson", "blue"], [["red", "crimson"], "blue"], rule="any")["accuracy"] == 1.0
