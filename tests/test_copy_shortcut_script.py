"""scripts/copy_shortcut.py: how often copying a shape from the text would be right, checked by hand."""

from __future__ import annotations

import re

import pytest

from script_loader import load_script


def test_copy_cases_by_hand():
    s = load_script("copy_shortcut")
    text = ("There are four objects. On the left is a large cyan hexagon, left of the cyan diamond. In the center is a "
            "small cyan diamond, right of the red star. At the top is a small red star, above the cyan hexagon. "
            "At the bottom is a large cyan circle.")
    # hexagon: cyan not written before; diamond: last cyan mention is "cyan diamond" (right); star: "red star" (right);
    # circle: the last cyan mention is the tail's "cyan hexagon" (wrong)
    assert s.copy_cases(text) == [None, True, True, False]
    # a shape-first sentence has no sized colour-shape subject; its colour word alone is no mention
    assert s.copy_cases("In the top left, there is a star; it is small and red. A small red circle, left of the "
                        "red star.") == [None]
    r = s.shortcut_rates([text, "There is one object. A small blue cross is in the center."])
    assert r == {"subjects": 5, "colour written before": 3 / 5, "copy right": 2 / 3}


def test_main_measures_the_data_and_refuses_bad_options(capsys):
    s = load_script("copy_shortcut")
    assert s.main(["--scenes", "200", "--option", "describe_order=reading", "--option", "describe_relations=none"]) == 0
    none = capsys.readouterr().out
    s.main(["--scenes", "200", "--option", "describe_order=reading"])
    nearest = capsys.readouterr().out
    rate = [float(out.rsplit(":", 1)[1]) for out in (none, nearest)]
    assert rate[0] < 0.5 < rate[1], (none, nearest)
    with pytest.raises(SystemExit):
        s.main(["--option", "describe_relations=previous"])
    with pytest.raises(SystemExit):
        s.main(["--option", "no-equals-sign"])


def test_conflict_cases_by_hand():
    s = load_script("copy_shortcut")
    text = ("There are three objects. On the left is a large cyan hexagon. In the center is a small cyan diamond, "
            "right of the cyan hexagon. At the top is a small red star, above the cyan diamond.")
    cases = s.conflict_cases(text, {"hexagon", "diamond", "star"})
    third = next(x for x in s.SHAPES if x not in ("hexagon", "diamond", "star"))
    assert cases == [{"prefix": "There are three objects. On the left is a large cyan hexagon. In the center is a "
                                "small cyan ",
                      "true": "diamond", "other": "hexagon", "third": third,
                      "swapped": f"There are three objects. On the left is a large cyan {third}. In the center is a "
                                 "small cyan "}]


class _ColourCopier:
    """A stub describer that writes, after a colour word, the shape that followed that colour last in its text."""

    def score(self, images, texts, prompts, normalize=True):
        import torch

        out = []
        for t in texts:
            prefix, shape = t.rsplit(" ", 1)
            color = prefix.split()[-1]
            before = re.findall(rf"\b{color} (\w+)", prefix)
            out.append(0.0 if before and before[-1] == shape else -1.0)
        return torch.tensor(out)


def test_ask_model_tells_a_text_copier_from_its_picks():
    s = load_script("copy_shortcut")
    from modalign.data.shapes import ShapesWorld

    world = ShapesWorld(task="instruct", n=80, split="heldout", describe_p=1.0, describe_at="alone",
                        describe_order="reading", describe_relations="earlier", shared_color_p=1.0)
    c = s.ask_model(_ColourCopier(), world)
    assert c["cases"] > 10
    assert c["text: other"] == c["swapped: third"] == c["cases"], c
