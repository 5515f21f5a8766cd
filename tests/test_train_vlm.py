"""The one trainer with the real VisionLanguageModel: exact token-weighted accumulation, a LoRA stage, and a stage that
trains the tower."""

import pytest
import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
import torch
from safetensors.torch import load_file
from test_vlm_tiny_parts import tiny_cfg

from modalign.config import validate_recipe
from modalign.data import DATASETS
from modalign.models import build_model
from modalign.trainer import run_recipe
from modalign.trainer.distributed import DistInfo
from modalign.trainer.step import train_step


def _recipe(stages):
    model = tiny_cfg("mlp").model_dump()
    return validate_recipe({"name": "tiny-vlm", "seed": 0, "model": model, "stages": stages})


def _instruct(**over):
    stage = {
        "name": "instruct",
        "objective": "instruct",
        "steps": 3,
        "batch_size": 4,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "instruct", "n": 12, "image_size": 32},
        "train": ["connector", "lm"],
        "log_every": 1,
    }
    stage.update(over)
    return stage


def _accumulated_grads(model, samples, groups, drop_weight=False):
    model.zero_grad(set_to_none=True)
    micro = [(model.collate([samples[i] for i in g]), len(g)) for g in groups]
    if drop_weight:  # what an example-weighted trainer would do
        original = model.training_loss
        model.training_loss = lambda b, o: {k: v for k, v in original(b, o).items() if k != "loss_weight"}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0)
    train_step(model, opt, micro, "instruct", len(samples), DistInfo(), 0.0, None)
    if drop_weight:
        del model.training_loss
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_vlm_grad_accumulation_is_exact_over_answer_tokens():
    torch.manual_seed(0)
    data = DATASETS["shapes"](task="instruct", n=4, image_size=32)
    samples = [data[i] for i in range(4)]
    model = build_model(tiny_cfg("mlp"), text_corpus=data.texts())
    one = _accumulated_grads(model, samples, [[0, 1, 2, 3]])
    two = _accumulated_grads(model, samples, [[0, 1], [2, 3]])
    naive = _accumulated_grads(model, samples, [[0, 1], [2, 3]], drop_weight=True)
    assert one.keys() == two.keys() and len(one) > 0
    worst = max(float((one[k] - two[k]).abs().max()) for k in one)
    scale = max(float(g.abs().max()) for g in one.values())
    assert worst < 1e-6 * max(scale, 1.0), (worst, scale)
    # the control: answers differ in length, so weighting micro-batches by examples is measurably wrong
    assert max(float((one[k] - naive[k]).abs().max()) for k in one) > 100 * max(worst, 1e-9)


def test_caption_then_lora_instruct_stages(tmp_path):
    caption = {
        "name": "align",
        "objective": "caption",
        "steps": 2,
        "batch_size": 4,
        "lr": 0.01,
        "data": {"name": "shapes", "task": "caption", "n": 8, "image_size": 32},
        "train": ["connector"],
    }
    lora = _instruct(train=["connector", "lm.lora"], lora={"r": 4})
    summary = run_recipe(_recipe([caption, lora]), tmp_path / "run", progress=False)
    assert summary["global_step"] == 5
    saved = load_file(str(tmp_path / "run" / "final" / "model.safetensors"))
    assert torch.isfinite(torch.stack([v.float().abs().sum() for v in saved.values()])).all()


def test_a_stage_that_trains_the_tower_updates_it_and_caches_no_features(tmp_path):
    """The frozen tower of a first stage is cached; a later stage naming `vision` trains it (the describer's tower
    continuation, recipes/llava-shapes-describe-tower.yaml)."""
    first = _instruct(name="frozen", steps=2)
    tower = _instruct(name="tower", steps=2, lr=0.001, train=["vision", "connector", "lm"])
    frozen_only = run_recipe(_recipe([first]), tmp_path / "a", progress=False)
    both = run_recipe(_recipe([first, tower]), tmp_path / "b", progress=False)
    assert frozen_only["stages"][0]["cache"] is not None and both["stages"][1]["cache"] is None
    assert both["stages"][1]["frozen"] == 0
    stage_one, after_one, after_two = (
        load_file(str(tmp_path / p / "model.safetensors"))
        for p in ("a/final", "b/checkpoints/step-00000002", "b/final")
    )
    vision = [k for k in stage_one if k.startswith("vision.")]
    assert vision and all(torch.equal(stage_one[k], after_one[k]) for k in vision)  # frozen through stage one
    assert max(float((after_one[k] - after_two[k]).abs().max()) for k in vision) > 0


def test_the_loss_reads_logits_only_where_labels_are_and_equals_the_full_one():
    from modalign.losses import lm_loss

    torch.manual_seed(0)
    data = DATASETS["shapes"](task="instruct", n=4, image_size=32)
    model = build_model(tiny_cfg("mlp"), text_corpus=data.texts()).eval()
    batch = model.collate([data[i] for i in range(4)])
    full = lm_loss(
        model.forward_logits(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1] * 4),
        batch["labels"],
    )
    assert model.training_loss(batch, "instruct")["loss"].item() == pytest.approx(full.item(), abs=1e-6)
    model.enable_lora({"r": 2})  # also through peft's wrapper
    with torch.no_grad():
        for n, p in model.lm.named_parameters():
            if "lora_B" in n:
                p.normal_()
    full = lm_loss(
        model.forward_logits(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1] * 4),
        batch["labels"],
    )
    assert model.training_loss(batch, "instruct")["loss"].item() == pytest.approx(full.item(), abs=1e-6)
