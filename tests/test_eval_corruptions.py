"""Image corruptions: pure, seeded, monotone in severity; `corrupt` on any suite, recorded in its settings."""

import numpy as np
import pytest
from PIL import Image

from modalign.eval.corruptions import CORRUPTIONS, CorruptedDataset, corrupt, parse_corruption


def _image(w=40, h=30):
    rng = np.random.default_rng(0)
    x = np.zeros((h, w, 3), np.uint8)
    x[:, : w // 2] = 200  # an edge, for blur to soften
    x[5:10, 5:10] = rng.integers(0, 255, (5, 5, 3))
    return Image.fromarray(x)


def _diff(a, b):
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_is_seeded_keeps_the_size_and_grows_with_severity(name):
    img = _image()
    outs = [corrupt(img, name, s, seed=3) for s in range(6)]
    assert _diff(outs[0], img) == 0 and outs[0] is not img
    assert all(o.size == img.size and o.mode == "RGB" for o in outs)
    assert _diff(corrupt(img, name, 4, seed=3), outs[4]) == 0  # same seed, same image
    d = [_diff(o, img) for o in outs]
    assert d[1] > 0 and d[5] > d[1]
    assert np.array_equal(np.asarray(img), np.asarray(_image()))  # the input is untouched


def test_hand_computed_cases():
    grey = Image.new("RGB", (10, 10), (100, 100, 100))
    bright = np.asarray(corrupt(grey, "brightness", 2))  # +0.2 on [0, 1] = +51
    assert (bright == 151).all()
    occ = np.asarray(corrupt(Image.new("RGB", (10, 10), (0, 0, 0)), "occlusion", 5, seed=1))
    assert (occ[..., 0] == 128).sum() == 49  # round(sqrt(0.5 * 100)) = 7: a 7x7 mid-grey square
    flat = corrupt(grey, "blur", 5)
    assert (np.asarray(flat) == 100).all()  # blurring a flat image changes nothing
    noisy = np.asarray(corrupt(grey, "gaussian_noise", 1, seed=0), np.float32) / 255
    assert abs(noisy.std() - 0.08) < 0.02


def test_parse_and_errors():
    assert parse_corruption("jpeg:2") == ("jpeg", 2)
    for bad, msg in [("fog:1", "unknown corruption"), ("jpeg", "severity"), ("jpeg:6", "0..5")]:
        with pytest.raises(ValueError, match=msg):
            parse_corruption(bad)


def test_dataset_wrapper_corrupts_images_and_keeps_attributes():
    class DS:
        split, classnames = "test", ["a", "b"]

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"id": "same", "image": _image(), "images": [_image()], "label": i}

    ds = CorruptedDataset(DS(), "gaussian_noise", 3)
    a, b = ds[0], ds[1]
    assert ds.split == "test" and ds.classnames == ["a", "b"] and b["label"] == 1
    assert _diff(a["image"], _image()) > 0 and _diff(a["images"][0], _image()) > 0
    assert _diff(a["image"], b["image"]) == 0  # one image id, one corrupted picture


def test_any_suite_takes_corrupt_and_records_it():
    from modalign.config import EvalConfig
    from modalign.eval.runner import run_suite
    from modalign.registry import ConfigError

    seen = []

    class Echo:
        def generate(self, images, prompts, max_new_tokens=8, do_sample=False):
            seen.extend(images)
            return ["yes"] * len(images)

    class QA:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"id": f"i{i}", "image": _image(), "question": "Is it?", "answer": "yes"}

    res = run_suite(Echo(), EvalConfig(suite="vqa", data=QA(), corrupt="occlusion:5"), progress=False)
    assert res["settings"]["corruption"] == {"name": "occlusion", "severity": 5}
    assert res["metrics"]["accuracy"] == 1.0 and all(_diff(im, _image()) > 0 for im in seen)
    with pytest.raises(ConfigError, match="unknown corruption"):
        run_suite(Echo(), EvalConfig(suite="vqa", data=QA(), corrupt="fog:2"), progress=False)


def test_cli_eval_passes_corrupt_to_every_suite():
    from modalign.cli.eval import build_evals

    evals = build_evals("vqa,pope", ["shapes:task=vqa"], [], "blur:2")
    assert [e.params()["corrupt"] for e in evals] == ["blur:2", "blur:2"]
