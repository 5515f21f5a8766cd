"""Multiple-choice parsing, circular rotations and accuracy, and the macro mean's minimum type count, by hand."""

import pytest

from modalign.eval.metrics import choice_accuracy, parse_choice, probe_accuracy, rotate_options

OPTIONS = {"A": "red circle", "B": "blue square", "C": "green star", "D": "dark red circle"}


@pytest.mark.parametrize(
    "text, letter",
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B.", "B"),
        ("[C]", "C"),
        ("D)", "D"),
        ("B. blue square", "B"),
        ("(C) green star", "C"),
        ("The answer is B", "B"),
        ("The answer is A.", "A"),
        ("Answer: (D)", "D"),
        ("I choose option C because it is green.", "C"),
        ("It is a green star.", "C"),  # the option's text
        ("a dark red circle", "D"),  # "red circle" lies inside "dark red circle": the longer wins
        ("I pick C, clearly", "C"),  # a lone capital letter
        ("A blue square, I think", "B"),  # "A" followed by a lower-case word is the article
        ("red circle or blue square", None),  # two options named
        ("no idea", None),
        ("The answer is E", None),  # not an option
    ],
)
def test_parse_choice(text, letter):
    assert parse_choice(text, OPTIONS) == letter


def test_rotations_move_every_option_and_the_answer():
    opts = {"A": "w", "B": "x", "C": "y"}
    assert rotate_options(opts, "A", 0) == (opts, "A")
    assert rotate_options(opts, "A", 1) == ({"A": "x", "B": "y", "C": "w"}, "C")
    assert rotate_options(opts, "B", 2) == ({"A": "y", "B": "w", "C": "x"}, "C")


def test_choice_accuracy_counts_a_group_only_if_every_trial_is_right():
    # q1 right in both rotations, q2 wrong in one, q3 (asked once) right; categories a, a, b
    preds = ["A", "C", "B", None, "D"]
    answers = ["A", "C", "B", "A", "D"]
    r = choice_accuracy(preds, answers, ["a", "a", "a", "a", "b"], ["q1", "q1", "q2", "q2", "q3"])
    assert r["accuracy"] == pytest.approx(2 / 3) and r["per_category"] == {"a": 0.5, "b": 1.0}
    assert r["unparsed"] == pytest.approx(1 / 5) and r["n"] == 3


def test_probe_macro_mean_leaves_out_rare_types_but_not_from_the_overall():
    # type x: 3 trials, 2 right; type y: 1 trial, right
    r = probe_accuracy([1, 1, 1, 1], [0, 0, 2, 0], ["x", "x", "x", "y"], min_type_count=2)
    assert r["per_type"] == {"x": pytest.approx(2 / 3), "y": 1.0} and r["counts"] == {"x": 3, "y": 1}
    assert r["macro"] == pytest.approx(2 / 3) and r["overall"] == pytest.approx(3 / 4)
    assert probe_accuracy([1, 1, 1, 1], [0, 0, 2, 0], ["x", "x", "x", "y"])["macro"] == pytest.approx(5 / 6)
    with pytest.raises(ValueError, match="min_type_count=5"):
        probe_accuracy([1], [0], ["x"], min_type_count=5)
