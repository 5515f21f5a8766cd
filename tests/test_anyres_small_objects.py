"""AnyRes (issue 4) proven where it matters: a tiny shape that a squashed global view cannot resolve.

Scenes (`data.small_objects.SmallObjects`): 256 px, one shape of ~7-10 px. The vision tower (frozen ImageNet
EfficientNet-Lite0) runs at its native 64 px. Untiled, the whole image is squashed to 64 px and the object is ~2 px:
its shape is gone. Tiled (`vision.anyres`, one 4x4 grid of 64 px tiles + the global view), a tile sees it at full
resolution. Two tiny VLMs get the same data, steps and batch; only the `anyres` key differs. VQA accuracy on
"What shape is the small object?" (4 shapes, chance 0.25) comes from the project's vqa suite.
Run: OMP_NUM_THREADS=1 .venv/bin/python -m pytest tests/test_anyres_small_objects.py -m slow -s
Numbers: docs/results/anyres.md.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from modalign.config import validate_recipe
from modalign.data.worlds.small_objects import SmallObjects, area_fraction
from modalign.eval.suites import SUITES
from modalign.models import load_model
from modalign.trainer import run_recipe

IMAGE, TILE = 256, 64
DATA = {"name": "small-objects", "task": "instruct", "n": 200, "split": "train", "image_size": IMAGE}
LM = {
    "name": "tiny-llama",
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "vocab_size": 300,
}


def _recipe(anyres: bool):
    vision = {"name": "efficientnet-lite0", "image_size": TILE}
    if anyres:  # the only difference between the two runs
        vision["anyres"] = {"grid_pinpoints": [[IMAGE, IMAGE]]}
    return validate_recipe(
        {
            "name": f"small-objects-{'tiled' if anyres else 'untiled'}",
            "seed": 0,
            "model": {"kind": "vlm", "vision": vision, "connector": {"name": "linear"}, "lm": LM},
            "stages": [
                {
                    "name": "sft",
                    "objective": "instruct",
                    "data": DATA,
                    "steps": 200,
                    "batch_size": 16,
                    "lr": 3e-3,
                    "weight_decay": 0.1,
                    "warmup_steps": 10,
                    "log_every": 50,
                    "train": ["connector", "lm"],
                }
            ],
        }
    )


def _object_pixels(image: Image.Image) -> np.ndarray:
    a = np.asarray(image).astype(int)
    return np.abs(a - a[0, 0]).sum(-1) > 30  # [H, W] pixels that differ from the plain background


def test_scenes_are_deterministic_and_shapes_have_equal_area():
    ds = SmallObjects(task="vqa", n=40, image_size=IMAGE, questions=("shape", "color"))
    again = SmallObjects(task="vqa", n=40, image_size=IMAGE, questions=("shape", "color"))
    assert len(ds) == 80 and ds.record(3) == again.record(3)
    assert np.array_equal(np.asarray(ds[5]["image"]), np.asarray(again[5]["image"]))
    first, second = ds[7], ds[47]  # same image, both question types
    assert first["id"] == second["id"] and {first["qtype"], second["qtype"]} == {"shape", "color"}
    assert first["answer"] == ds.scene(7)["objects"][0]["shape"]
    assert second["answer"] == ds.scene(7)["objects"][0]["color"]
    # the hand-measurable outline areas: a square fills its box, a triangle half of it
    assert area_fraction("square") == 1.0 and abs(area_fraction("triangle") - 0.5) < 0.02
    ink = {}
    for i in range(40):
        ink.setdefault(ds.scene(i)["objects"][0]["shape"], []).append(_object_pixels(ds[i]["image"]).sum())
    means = {s: float(np.mean(v)) for s, v in ink.items()}
    assert len(means) == 4 and max(means.values()) / min(means.values()) < 1.3, means  # no area cue to shape
    train_item = SmallObjects(task="instruct", n=2)[1]
    assert train_item["conversations"][0]["value"] == "<image>\nWhat shape is the small object?"
    assert train_item["conversations"][1]["value"] in SmallObjects(n=1).shapes


def test_the_object_is_a_few_pixels_in_the_global_view_and_whole_in_a_tile():
    from modalign.encoders.preprocess import ImageProcessing
    from modalign.encoders.tiling import AnyResTiler

    ds = SmallObjects(task="vqa", n=10, image_size=IMAGE)
    tiler = AnyResTiler(TILE, ImageProcessing.square(TILE), grid_pinpoints=[(IMAGE, IMAGE)])
    for i in range(10):
        _global_view, tiles, grid, _ = tiler.tile(ds[i]["image"])
        assert grid == (4, 4) and len(tiles) == 16
        x0, y0, x1, y1 = ds.scene(i)["objects"][0]["box"]
        assert max(x1 - x0, y1 - y0) * TILE / IMAGE <= 3.5  # <= 3.5 px across in the squashed view
        # the tiles together hold every object pixel at full resolution
        assert sum(_object_pixels(t).sum() for t in tiles) == _object_pixels(ds[i]["image"]).sum()
    with pytest.raises(ValueError, match="object_px"):
        SmallObjects(object_px=(2, 4))
    with pytest.raises(ValueError, match="too small"):
        SmallObjects(image_size=12)


@pytest.mark.slow
def test_tiled_model_reads_small_shapes_the_untiled_one_cannot(tmp_path):
    test = SmallObjects(task="vqa", n=60, split="test", image_size=IMAGE)
    acc = {}
    for anyres in (True, False):
        out = tmp_path / ("tiled" if anyres else "untiled")
        summary = run_recipe(_recipe(anyres), out, progress=False, datasets={"small-objects": SmallObjects})
        model = load_model(summary["final_dir"])
        assert (model.tiler is not None) == anyres
        result = SUITES["vqa"](model, test, prompt="{question}", max_new_tokens=6, progress=False)
        acc["tiled" if anyres else "untiled"] = result["metrics"]["acc_shape"]
    print(f"\nsmall-object shape VQA accuracy (chance 0.25): {acc}")
    assert acc["tiled"] >= 0.8, acc
    assert acc["untiled"] <= 0.4, acc
