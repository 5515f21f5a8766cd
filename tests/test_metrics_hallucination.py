"""POPE parsing and metrics (yes-ratio of predictions), likelihood variant, CHAIR on hand-computed cases."""

import pytest

from modalign.eval.metrics import (
    chair,
    extract_objects,
    parse_yes_no,
    phrase_coverage,
    pope_from_likelihood,
    pope_metrics,
)


def test_pope_parser():
    assert parse_yes_no("No, there is not.") == "no"
    assert parse_yes_no("Yes. There is no dog in the image.") == "yes"  # only the first sentence counts
    assert parse_yes_no("There is not a dog") == "no"
    assert parse_yes_no("Yes, there is a dog.") == "yes"
    assert parse_yes_no("NO") == "no"


def test_pope_metrics_hand_case_and_prediction_yes_ratio():
    preds = ["yes", "yes", "no", "yes"]
    labels = ["yes", "no", "no", "no"]  # tp 1, fp 2, fn 0, tn 1
    m = pope_metrics(preds, labels)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1.0)
    assert m["f1"] == pytest.approx(0.5)
    assert m["yes_ratio"] == pytest.approx(0.75)  # from the predictions; the labels' ratio would be 0.25
    with pytest.raises(ValueError, match="parse_yes_no"):
        pope_metrics(["Yes!"], ["yes"])


def test_pope_likelihood_variant():
    assert pope_from_likelihood([-0.1, -2.0, -1.0], [-1.0, -0.5, -1.0]) == ["yes", "no", "no"]


VOCAB = {"dog": ["puppy"], "cat": ["kitten"], "traffic light": ["stoplight"], "person": ["man", "woman"]}


def test_extract_objects_singularises_and_maps_synonyms():
    assert extract_objects("Two dogs and kittens near traffic lights", VOCAB) == ["dog", "cat", "traffic light"]


def test_chair_hand_case():
    caps = ["Two dogs and a kitten near a traffic light.", "A man with his puppy."]
    truths = [["dog", "person"], ["dog", "person"]]
    r = chair(caps, truths, VOCAB)
    assert r["CHAIR_i"] == pytest.approx(2 / 5)  # cat and traffic light of 5 mentions
    assert r["CHAIR_s"] == pytest.approx(1 / 2)
    assert r["recall"] == pytest.approx(3 / 4)  # dog of {dog, person}; both of {dog, person}
    assert r["all_named"] == pytest.approx(1 / 2)  # only the second caption names both of its objects
    assert r["per_caption"][0]["hallucinated"] == ["cat", "traffic light"]
    with pytest.raises(ValueError, match="canonical"):
        chair(caps, [["puppy"], []], VOCAB)


def test_phrase_coverage_hand_case():
    caps = ["A large red circle left of a blue square.", "A bored circle and a green star.", "Nothing."]
    phrases = [["red circle", "blue square"], ["red circle", "green star"], []]
    r = phrase_coverage(caps, phrases)
    assert r["phrase_recall"] == pytest.approx(3 / 4)  # "bored circle" is not "red circle"
    assert r["phrases_all_named"] == pytest.approx(2 / 3)  # the first, and the third (nothing to name)
    with pytest.raises(ValueError, match="one phrase list"):
        phrase_coverage(caps, phrases[:2])
