"""Block expansion of a VLM's LM: where blocks go, identical logits and generations, new blocks copy the one before
with zeroed output projections, the result saves, reloads and continues training through init_from; refusals."""

import pytest
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.cli import main
from modalign.config import validate_recipe
from modalign.models import load_model
from modalign.models.lm_expand import expand_lm_depth, insertion_points
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError
from modalign.trainer import run_recipe

QUESTIONS = ["What color is the square?", "Describe the picture."]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(num_layers=3), text_corpus=CORPUS).eval()
    with torch.no_grad():  # a random LM with a sharp head, so greedy choices are not near-ties
        m.lm.lm_head.weight.mul_(8)
    return m


def test_insertion_points_spread_over_equal_groups():
    assert insertion_points(3, 1) == [2]
    assert insertion_points(3, 2) == [0, 2]
    assert insertion_points(3, 3) == [0, 1, 2]
    assert insertion_points(32, 8) == [3, 7, 11, 15, 19, 23, 27, 31]  # LLaMA Pro's 32 + 8
    for bad in (0, 4):
        with pytest.raises(ConfigError, match="between 1 and the LM's 3 layers"):
            insertion_points(3, bad)


def test_expanded_model_computes_the_same_logits_and_answers(model):
    deep = expand_lm_depth(model, 2).eval()
    assert len(deep.lm.model.layers) == 5 and deep.cfg.lm.params()["num_layers"] == 5
    assert deep.lm.config.num_hidden_layers == 5
    ims = images(2, seed=3)
    a, la = model.generate(ims, QUESTIONS, max_new_tokens=8, return_logits=True)
    b, lb = deep.generate(ims, QUESTIONS, max_new_tokens=8, return_logits=True)
    assert a == b and torch.equal(la, lb)
    # the layers: 0, new(0), 1, 2, new(2); a new block is its source with o_proj and down_proj zeroed
    old, new = model.lm.model.layers, deep.lm.model.layers
    for j, (i, is_new) in enumerate([(0, False), (0, True), (1, False), (2, False), (2, True)]):
        for name, p in new[j].state_dict().items():
            src = old[i].state_dict()[name]
            if is_new and name in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
                assert not p.any() and src.any()
            else:
                assert torch.equal(p, src), (j, name)
    # the expanded LM is a fresh module: training it leaves the original untouched
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(deep.lm.parameters(), model.lm.parameters()))


def test_expand_cli_saves_a_model_that_init_from_trains_on(model, tmp_path, capsys):
    model.save_pretrained(tmp_path / "small")
    assert main(["expand", str(tmp_path / "small"), "--add-lm-layers", "1", "--out", str(tmp_path / "deep")]) == 0
    said = capsys.readouterr().out
    assert "LM 3 -> 4 layers" in said and "change by at most 0" in said
    back = load_model(tmp_path / "deep")
    ims = images(2, seed=4)
    assert back.generate(ims, QUESTIONS, max_new_tokens=6) == model.generate(ims, QUESTIONS, max_new_tokens=6)
    cfg = tiny_cfg(num_layers=4).model_dump()
    stage = {
        "name": "instruct",
        "objective": "instruct",
        "steps": 2,
        "batch_size": 4,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "instruct", "n": 8, "image_size": 32},
        "train": ["connector", "lm"],
    }
    recipe = validate_recipe(
        {"name": "deeper", "seed": 0, "init_from": str(tmp_path / "deep"), "model": cfg, "stages": [stage]}
    )
    assert run_recipe(recipe, tmp_path / "run", progress=False)["global_step"] == 2
    trained = load_model(tmp_path / "run" / "final")
    new_block = trained.lm.model.layers[3]  # the zero-output copy of layer 2 has started to learn
    assert new_block.self_attn.o_proj.weight.abs().sum() > 0
    with pytest.raises(SystemExit, match="already holds a model"):
        main(["expand", str(tmp_path / "small"), "--add-lm-layers", "1", "--out", str(tmp_path / "deep")])


def test_lora_and_xattn_models_are_refused(model):
    torch.manual_seed(0)
    xattn = VisionLanguageModel.from_config(tiny_cfg("xattn", {"every": 1}), text_corpus=CORPUS)
    with pytest.raises(ConfigError, match="xattn"):
        expand_lm_depth(xattn, 1)
    from modalign.config import LoraConfig

    lora = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    lora.enable_lora(LoraConfig(r=2))
    with pytest.raises(ConfigError, match="merge them first"):
        expand_lm_depth(lora, 1)
