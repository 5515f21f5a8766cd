"""The bad-input corpus, configuration half: recipes, overrides, saved model folders, checkpoints and records that
only fail when batched. Each kind is one clear error naming the file, field or record (the data half is
test_bad_inputs_data.py; damaged checkpoints falling back are test_checkpoint_integrity.py)."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

from modalign.config import Component, StageConfig, load_recipe
from modalign.models import load_model
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError
from modalign.trainer.stage_data import collate_named

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from test_vlm_tiny_parts import CORPUS as TEXTS
from test_vlm_tiny_parts import images, tiny_cfg
from train_toys import DATASETS, toy_builder, toy_recipe

from modalign.trainer import run_recipe

RECIPE = """\
name: r
model:
  kind: dual
  vision: {name: vit, image_size: 32, patch_size: 8, hidden_size: 16, num_layers: 1, num_heads: 2}
  text: {name: transformer, hidden_size: 16, num_layers: 1, num_heads: 2}
stages:
  - name: a
    objective: contrastive
    data: {name: shapes, n: 8, image_size: 32}
    steps: 2
    batch_size: 4
    train: [head]
"""


def recipe_error(text: str | bytes, message: str, overrides=()):
    def case(tmp):
        path = tmp / "r.yaml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        with pytest.raises(ConfigError, match=message) as err:
            load_recipe(path, list(overrides))
        assert str(path) in str(err.value) or overrides  # names the file (an override names itself)

    return case


def stage_line(line: str) -> str:
    return RECIPE.replace("    train: [head]\n", f"    train: [head]\n    {line}\n")


def component_bool(tmp):
    recipe = load_recipe(
        _write(tmp, RECIPE.replace("num_layers: 1, num_heads: 2}\n  text", "num_layers: true, num_heads: 2}\n  text"))
    )
    from modalign.models import build_model

    with pytest.raises(
        ConfigError, match="vision encoder 'vit': parameter num_layers: expected a number .* boolean true"
    ):
        build_model(recipe.model)


def _write(tmp, text) -> Path:
    (tmp / "r.yaml").write_text(text)
    return tmp / "r.yaml"


@pytest.fixture(scope="module")
def saved_vlm(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.vision = Component(name="vit", image_size=16, patch_size=8, hidden_size=16, num_layers=1, num_heads=2)
    d = tmp_path_factory.mktemp("vlm") / "model"
    VisionLanguageModel.from_config(cfg, text_corpus=TEXTS).save_pretrained(d)
    return d


def model_folder(change, message):
    def case(tmp, saved_vlm):
        d = tmp / "model"
        shutil.copytree(saved_vlm, d)
        change(d)
        with pytest.raises(ConfigError, match=message) as err:
            load_model(d)
        assert str(d) in str(err.value)

    return case


def flip(path: Path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def edit_tokenizer(d: Path):
    tok = json.loads((d / "tokenizer.json").read_text())
    tok["added_tokens"][0]["content"] = "<evil>"
    (d / "tokenizer.json").write_text(json.dumps(tok))


def checkpoint_of_other_recipe(tmp):
    stage = {"name": "a", "train": ["head"], "steps": 4, "checkpoint_every": 2}
    run_recipe(
        toy_recipe([stage]), tmp, progress=False, model_builder=toy_builder(), datasets=DATASETS, stop_after_steps=2
    )
    with pytest.raises(ConfigError, match=r"step-00000002 was written by a different recipe"):
        run_recipe(
            toy_recipe([{**stage, "batch_size": 2}]),
            tmp,
            resume=True,
            progress=False,
            model_builder=toy_builder(),
            datasets=DATASETS,
        )


def fresh_run_over_checkpoints(tmp):
    stage = {"name": "a", "train": ["head"], "steps": 2}
    run_recipe(toy_recipe([stage]), tmp, progress=False, model_builder=toy_builder(), datasets=DATASETS)
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        run_recipe(toy_recipe([stage]), tmp, progress=False, model_builder=toy_builder(), datasets=DATASETS)


def unbatchable_record(tmp, saved_vlm):
    model = load_model(saved_vlm)
    good = {"id": "g", "image": images(1)[0], "text": "a red circle"}
    bad = {
        "id": "b7",
        "image": images(1)[0],
        "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "<image>"}],
    }
    stage = StageConfig(name="s", objective="instruct", data="x", steps=1, train=["connector"])
    with pytest.raises(RuntimeError, match=r"stage 's': record 8 \(id 'b7'\) of dataset 'x' cannot be batched"):
        collate_named(model, [good, bad], [3, 8], stage)


CORPUS = {
    # recipes and overrides (refused when the recipe is read, naming file and field)
    "duplicate YAML key": recipe_error(RECIPE + "name: again\n", r"found key 'name' twice \(lines 1 and 13\)"),
    "duplicate key in a flow mapping": recipe_error(RECIPE.replace("n: 8,", "n: 8, n: 9,"), "found key 'n' twice"),
    "lr: .inf": recipe_error(stage_line("lr: .inf"), r"stages\.0\.lr: Input should be a finite number"),
    "lr: .nan": recipe_error(stage_line("lr: .nan"), r"stages\.0\.lr: Input should be a finite number"),
    "steps: true": recipe_error(RECIPE.replace("steps: 2", "steps: true"), r"stages\.0\.steps: .*boolean true"),
    "seed: false": recipe_error("seed: false\n" + RECIPE, r"seed: .*boolean false"),
    "skip_bad: 'yes' (a string for a flag)": recipe_error(stage_line("skip_bad: 'yes'"), r"stages\.0\.skip_bad"),
    "max_bad_steps: 0": recipe_error(stage_line("max_bad_steps: 0"), r"stages\.0\.max_bad_steps"),
    "unknown stage field": recipe_error(stage_line("learning_rate: 0.1"), r"stages\.0\.learning_rate: Extra inputs"),
    "non-UTF-8 recipe file": recipe_error(RECIPE.encode() + b"# \xff\n", "not UTF-8"),
    "recipe that is a list": recipe_error("- a\n- b\n", "a recipe is a mapping"),
    "override with invalid YAML": recipe_error(
        RECIPE, r"override 'stages\.0\.lr=\[': the value is not valid YAML", ["stages.0.lr=["]
    ),
    "override of lr with .inf": recipe_error(RECIPE, "finite number", ["stages.0.lr=.inf"]),
    "boolean for a component's number": component_bool,
    # saved model folders (refused by load_model, naming the folder or file)
    "flipped byte in the model tensors": model_folder(
        lambda d: flip(d / "model.safetensors"), "model.safetensors does not match its sha256"
    ),
    "tokenizer file edited": model_folder(edit_tokenizer, r"tokenizer\.json does not match its sha256"),
    "tokenizer file added": model_folder(
        lambda d: (d / "added_tokens.json").write_text("{}"), "added_tokens.json not in manifest.json"
    ),
    "chat template edited": model_folder(
        lambda d: (d / "chat_template.jinja").write_text("x"), r"chat_template\.jinja does not match its sha256"
    ),
    "special tokens map added": model_folder(
        lambda d: (d / "special_tokens_map.json").write_text("{}"), "special_tokens_map.json not in manifest"
    ),
    "LM config edited": model_folder(lambda d: flip(d / "lm" / "config.json"), r"lm/config\.json does not match"),
    "manifest deleted": model_folder(lambda d: (d / "manifest.json").unlink(), "has no manifest.json"),
    "manifest not JSON": model_folder(lambda d: (d / "manifest.json").write_text("{"), "not a valid manifest"),
    "config.json not JSON": model_folder(
        lambda d: (d / "config.json").write_text("{"), r"config\.json: not valid JSON"
    ),
    "config.json edited": model_folder(
        lambda d: (d / "config.json").write_text(json.dumps({"format": 2, "model": {"kind": "x"}})),
        r"config\.json does not match its sha256",
    ),
    "weights deleted": model_folder(lambda d: (d / "model.safetensors").unlink(), "has no model.safetensors"),
    "not a model folder": model_folder(lambda d: shutil.rmtree(d), "is not a saved modalign model"),
    # checkpoints and output folders (integrity fallbacks: test_checkpoint_integrity.py)
    "checkpoint of another recipe": checkpoint_of_other_recipe,
    "fresh run over a run's checkpoints": fresh_run_over_checkpoints,
    # records that only fail when batched (a Dataset object handed over in Python is not read by our readers)
    "record whose answer holds <image>, met at batching": unbatchable_record,
}


@pytest.mark.parametrize("kind", list(CORPUS))
def test_bad_input(kind, tmp_path, request):
    case = CORPUS[kind]
    wants = case.__code__.co_varnames[: case.__code__.co_argcount]
    case(tmp_path, *[request.getfixturevalue(name) for name in wants[1:]])
