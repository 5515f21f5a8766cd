"""The SmolLM2 recipes of the route comparison validate, name data that builds, and train what they say."""

import pytest

from modalign.config import load_recipe
from modalign.data import DATASETS
from modalign.registry import build


@pytest.mark.parametrize(
    "name, connector, train",
    [
        ("llava-smollm2-shapes", "mlp", ["connector", "lm.lora"]),
        ("blip2-smollm2-shapes", "qformer", ["connector", "lm.lora"]),
        ("llava-smollm2-fashion", "mlp", ["connector", "lm.lora"]),
        ("blip2-smollm2-fashion", "qformer", ["connector", "lm.lora"]),
        ("tool-use-smollm2", "mlp", ["lm.lora"]),
    ],
)
def test_comparison_recipes(name, connector, train):
    recipe = load_recipe(name)
    assert recipe.model.lm.name == "smollm2-135m" and recipe.model.connector.name == connector
    (stage,) = recipe.stages
    assert stage.objective == "instruct" and stage.train == train and stage.lora is not None
    data = stage.data.params()
    if stage.data.name == "llava-json":
        assert data["allow_text_only"] is True  # tool-use traces carry no image
        return
    try:
        ds = build(DATASETS, "dataset", stage.data.name, **{**data, "n": 3} if "n" in data else data)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed")
    turns = ds[0]["conversations"]
    assert turns[0]["value"].startswith("<image>\n") and all(t["value"] for t in turns)
