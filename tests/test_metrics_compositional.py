"""Per-type probe accuracy (strict), Winoground text/image/group, and grounding IoU/box parsing by hand."""

import pytest

from modalign.eval.metrics import box_iou, grounding_accuracy, parse_box, probe_accuracy, winoground_scores


def test_probe_accuracy_is_strict_and_per_type():
    r = probe_accuracy([1.0, 1.0, 2.0, 0.5], [0.0, 1.0, 1.0, 1.0], ["a", "a", "a", "b"])
    assert r["per_type"] == {"a": pytest.approx(2 / 3), "b": 0.0}  # the tie (1.0 vs 1.0) is wrong
    assert r["macro"] == pytest.approx(1 / 3) and r["overall"] == pytest.approx(0.5)


def test_winoground_hand_case():
    scores = [
        [[2, 1], [1, 3]],  # text and image right -> group
        [[2, 3], [1, 1]],  # neither
        [[2, 1], [3, 4]],
    ]  # image only
    r = winoground_scores(scores)
    assert r["text"] == pytest.approx(1 / 3) and r["image"] == pytest.approx(2 / 3)
    assert r["group"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\[N, 2, 2\]"):
        winoground_scores([[1, 2]])


def test_box_parsing_and_iou():
    assert parse_box("the box is [10, 20.5, 30, 40].") == [10.0, 20.5, 30.0, 40.0]
    assert parse_box("(30, 40, 10, 20)") == [10.0, 20.0, 30.0, 40.0]
    assert parse_box("somewhere on the left") is None
    assert box_iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    r = grounding_accuracy([[0, 0, 2, 2], None, [0, 0, 10, 10]], [[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 10, 12]])
    assert r["acc@0.5"] == pytest.approx(2 / 3)
    assert r["mean_iou"] == pytest.approx((1 + 0 + 100 / 120) / 3)
    assert r["unparsed"] == pytest.approx(1 / 3)
