"""The Python front door: parts by name, path or module; train on Dataset objects; evaluate; save and load."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Dataset
from user_parts import PatchMeanTower

import modalign as ma
from modalign.cli import main as cli_main


class Pairs(Dataset):
    """A user's own caption data: shapes images with their captions, from a plain list."""

    def __init__(self, n: int = 16):
        src = ma.dataset("shapes", task="caption", n=n, image_size=32)
        self.items = [src[i] for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


TEXT = {"name": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_length": 32}


def test_own_module_tower_trains_saves_and_loads_only_when_trusted(tmp_path):
    torch.manual_seed(0)
    model = ma.DualEncoder(vision=PatchMeanTower(image_size=16, width=24), text=TEXT, embed_dim=16)
    assert model.cfg.vision.model_dump() == {
        "name": "module",
        "target": "user_parts:PatchMeanTower",
        "config": {"image_size": 16, "grid": 2, "width": 24},
    }
    before = model.vision.proj.weight.detach().clone()
    data = Pairs()
    seen = []
    summary = ma.train(
        model,
        [
            ma.Stage(
                name="fit", objective="contrastive", data=data, steps=3, batch_size=8, train=["vision", "text", "head"]
            )
        ],
        tmp_path / "run",
        progress=False,
        on_step=lambda stage, step, global_step, logged: seen.append((stage.name, step, global_step, logged["loss"])),
    )
    assert [s[:3] for s in seen] == [("fit", 1, 1), ("fit", 2, 2), ("fit", 3, 3)]
    assert all(isinstance(s[3], float) for s in seen)  # the step's loss, as the log has it
    assert summary["global_step"] == 3 and not torch.equal(before, model.vision.proj.weight)
    with pytest.raises(ma.ConfigError, match="trust_code=True"):
        ma.load(tmp_path / "run" / "final")
    again = ma.load(tmp_path / "run" / "final", trust_code=True)
    assert isinstance(again.vision, PatchMeanTower)
    images = [data[i]["image"] for i in range(4)]
    model.eval()
    torch.testing.assert_close(again.embed_images(images), model.embed_images(images))
    result = ma.evaluate(again, "retrieval", data, progress=False)
    assert set(result["metrics"]) >= {"t2i_R@1", "i2t_R@1"}
    assert result["settings"]["data"] == {"name": "<object>", "class": "test_api.Pairs", "len": 16}


def test_modules_defined_in_main_or_without_config_are_refused():
    class NoConfig(PatchMeanTower):
        get_config = None

    with pytest.raises(ma.ConfigError, match="get_config"):
        ma.DualEncoder(vision=NoConfig(), text=TEXT)


def test_parts_by_unknown_name_list_the_choices():
    with pytest.raises(ma.ConfigError, match="unknown vision encoder 'clip-b32'.*efficientnet-lite0"):
        ma.DualEncoder(vision="clip-b32", text=TEXT)
    with pytest.raises(ma.ConfigError, match="unknown connector 'projector'.*mlp"):
        ma.VisionLanguageModel(
            vision=PatchMeanTower(), connector="projector", lm={"name": "tiny-llama"}, text_corpus=["a red circle"]
        )


def test_vlm_from_parts_trains_on_a_dataset_object_and_its_save_is_the_trained_part(tmp_path):
    torch.manual_seed(0)
    data = Pairs()
    lm = {"name": "tiny-llama", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "vocab_size": 300}
    model = ma.VisionLanguageModel(
        vision={"name": "efficientnet-lite0", "image_size": 32},
        connector="mlp",
        lm=lm,
        text_corpus=[d["text"] for d in data.items],
    )
    ma.train(
        model,
        [{"name": "align", "objective": "caption", "data": data, "steps": 2, "batch_size": 4, "train": ["connector"]}],
        tmp_path,
        progress=False,
    )
    meta = json.loads((tmp_path / "final" / "config.json").read_text())
    assert set(meta["references"]) == {"vision"}  # the frozen ImageNet tower is named; the from-scratch LM stored
    again = ma.load(tmp_path / "final")
    im = [data[0]["image"]]
    assert again.generate(im, max_new_tokens=4) == model.eval().generate(im, max_new_tokens=4)


def test_components_and_the_list_command(capsys):
    table = ma.components()
    assert {"vision", "text", "connectors", "lms", "datasets", "suites", "objectives"} <= set(table)
    assert table["connectors"]["mlp"]["params"]["act"] == "gelu"
    assert "text_corpus" not in table["lms"]["tiny-llama"]["params"]
    # every entry says what it is, never a base class's docstring (torch's Dataset: "An abstract class ...")
    vague = [f"{fam}/{name}" for fam, entries in table.items() for name, e in entries.items() if "abstract" in e["doc"]]
    assert not vague and table["datasets"]["mixture"]["doc"].startswith("Several datasets as one")
    assert cli_main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "vqa(" in out and "pope(" in out
    assert cli_main(["list", "recipes"]) == 0 and "llava-shapes" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown family"):
        cli_main(["list", "towers"])


def test_eval_help_lists_every_suite(capsys):
    from modalign.eval.suites import SUITES

    with pytest.raises(SystemExit):
        cli_main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(name in out for name in SUITES)


def test_built_in_recipes_by_name():
    recipe = ma.run_recipe.__globals__["load_recipe"]("llava-shapes")
    assert recipe.name == "llava-shapes" and ma.recipe_path("llava-shapes").is_file()
    assert "lit-fashion-mnist" in ma.list_recipes()
    with pytest.raises(ma.ConfigError, match="no built-in recipe 'llava'"):
        ma.recipe_path("llava")
