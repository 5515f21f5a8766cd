"""A data option out of range is a config error naming the stage, raised before a weight is built."""

import pytest
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
from test_vlm_tiny_parts import tiny_cfg

from modalign.config import validate_recipe
from modalign.registry import ConfigError
from modalign.trainer import run_recipe


def test_a_bad_data_option_names_the_stage_and_the_option(tmp_path):
    stage = {
        "name": "describe",
        "objective": "instruct",
        "steps": 2,
        "batch_size": 2,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "instruct", "n": 4, "image_size": 32, "short_p": 1.5},
        "train": ["connector", "lm"],
    }
    recipe = validate_recipe({"name": "tiny-vlm", "seed": 0, "model": tiny_cfg("mlp").model_dump(), "stages": [stage]})
    with pytest.raises(ConfigError, match=r"stage 'describe': dataset 'shapes': short_p is the probability"):
        run_recipe(recipe, tmp_path / "run", evaluate=False, progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_option_the_dataset_does_not_take_is_named_with_the_ones_it_does(tmp_path):
    stage = {
        "name": "describe",
        "objective": "instruct",
        "steps": 2,
        "batch_size": 2,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "instruct", "n": 4, "image_size": 32, "describe_at": "last"},
        "train": ["connector", "lm"],
    }
    recipe = validate_recipe({"name": "tiny-vlm", "seed": 0, "model": tiny_cfg("mlp").model_dump(), "stages": [stage]})
    with pytest.raises(ConfigError, match=r"dataset 'shapes' does not take describe_at; its parameters are: task, n,"):
        run_recipe(recipe, tmp_path / "run", evaluate=False, progress=False)
