"""Unit tests of the trainer's parts: sampler, schedules, optimizer groups, freeze plans, checkpoint serialisation."""

import math
import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "dist_scripts"))
from train_toys import ToyModel

from modalign.config import LoraConfig
from modalign.registry import ConfigError
from modalign.trainer import checkpoint as ckpt
from modalign.trainer.freeze import apply_freeze_plan, prepare_stage
from modalign.trainer.optim import build_optimizer, lr_at, param_groups
from modalign.trainer.sampler import ResumableSampler, shard


def test_sampler_epochs_are_permutations_and_batches_cross_epochs():
    s = ResumableSampler(5, seed=3)
    stream = s.next_global_batch(4) + s.next_global_batch(4) + s.next_global_batch(2)
    assert sorted(stream[:5]) == list(range(5)) and sorted(stream[5:]) == list(range(5))
    assert (s.epoch, s.index) == (2, 0)
    assert ResumableSampler(5, seed=3).permutation(1).tolist() == stream[5:]


def test_sampler_resumes_mid_epoch_exactly():
    a = ResumableSampler(7, seed=1, stream=2)
    a.next_global_batch(3)
    saved = a.state_dict()
    rest = [a.next_global_batch(3) for _ in range(4)]
    b = ResumableSampler(7, seed=1, stream=2)
    b.load_state_dict(saved)
    assert [b.next_global_batch(3) for _ in range(4)] == rest
    with pytest.raises(ValueError, match="same recipe"):
        ResumableSampler(8, seed=1).load_state_dict(saved)


def test_sampler_streams_differ_and_empty_dataset_errors():
    assert (
        ResumableSampler(20, 0, stream=0).permutation(0).tolist() != ResumableSampler(20, 0, 1).permutation(0).tolist()
    )
    with pytest.raises(ValueError, match="empty"):
        ResumableSampler(0, seed=0)


def test_shard_blocks_union_is_global_batch():
    batch = list(range(100, 112))
    parts = [shard(batch, r, 2, 3) for r in range(2)]
    assert parts[0] == [[100, 101], [102, 103], [104, 105]]
    assert sum((m for p in parts for m in p), []) == batch
    with pytest.raises(ValueError, match="multiple of 8"):
        shard(batch, 0, 2, 4)


def test_lr_schedules_hand_computed():
    # warmup 2 of 10 steps at base 1.0: 0.5, 1.0, then decay over the remaining 8
    assert lr_at(0, 1.0, 10, 2, "cosine") == 0.5
    assert lr_at(1, 1.0, 10, 2, "cosine") == 1.0
    assert lr_at(2, 1.0, 10, 2, "cosine") == 1.0
    assert math.isclose(lr_at(6, 1.0, 10, 2, "cosine"), 0.5)  # halfway: (1 + cos(pi/2)) / 2
    assert math.isclose(lr_at(4, 1.0, 10, 2, "cosine"), 0.5 * (1 + math.cos(math.pi / 4)))
    assert math.isclose(lr_at(6, 2.0, 10, 2, "linear"), 1.0)
    assert lr_at(9, 2.0, 10, 0, "constant") == 2.0
    assert math.isclose(lr_at(9, 1.0, 10, 0, "linear"), 0.1)


def test_no_weight_decay_on_biases_and_norms():
    model = ToyModel()
    groups = param_groups(model, 0.1)
    decayed, plain = groups[0]["names"], groups[1]["names"]
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert "vision.0.weight" in decayed and "text.weight" in decayed and "head.1.weight" in decayed
    assert {"vision.0.bias", "vision.1.weight", "vision.1.bias", "head.1.bias"} <= set(plain)
    assert not set(decayed) & set(plain)


def test_freeze_plan_counts_modes_and_errors():
    model = ToyModel()
    report = apply_freeze_plan(model, ["head"])
    assert report.trainable == 8 * 3 + 3
    assert report.trainable + report.frozen == sum(p.numel() for p in model.parameters())
    assert report.per_component["vision"] == {"trainable": 0, "frozen": 6 * 8 + 8 + 16}
    assert not model.vision.training and model.head.training
    assert all(not p.requires_grad for p in model.vision.parameters())
    with pytest.raises(ConfigError, match="does not have"):
        apply_freeze_plan(model, ["connector"])


def test_lora_plan_trains_only_adapters(tmp_path):
    from modalign.config import StageConfig

    model = ToyModel()
    stage = StageConfig(
        name="s", objective="caption", data={"name": "toy"}, steps=1, train=["lm.lora"], lora=LoraConfig(r=2)
    )
    with pytest.raises(ConfigError, match="no LoRA adapters"):
        apply_freeze_plan(model, ["lm.lora"])
    prepare_stage(model, stage)
    report = apply_freeze_plan(model, ["lm.lora"])
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert sorted(trainable) == ["lm.lora_A", "lm.lora_B"] and report.trainable == 2 * 2 * 8
    assert model.lm.training  # the lm keeps train mode: its adapters train


def test_no_trainable_parameter_is_an_error():
    model = ToyModel()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable"):
        build_optimizer(model, 1e-3, 0.0)


def test_optimizer_state_roundtrip_through_safetensors_and_json(tmp_path):
    torch.manual_seed(0)
    model = ToyModel()
    opt = build_optimizer(model, 1e-2, 0.1)
    for _ in range(2):
        model.training_loss(model.collate([{"id": "toy-1", "x": torch.randn(6), "label": 1}]), "caption")[
            "loss"
        ].backward()
        opt.step()
    tensors, meta = ckpt.flatten_optimizer(opt.state_dict())
    import json

    from safetensors.torch import load_file, save_file

    save_file(tensors, str(tmp_path / "o.safetensors"))
    restored = ckpt.unflatten_optimizer(load_file(str(tmp_path / "o.safetensors")), json.loads(json.dumps(meta)))
    opt2 = build_optimizer(ToyModel(), 1e-2, 0.1)
    opt2.load_state_dict(restored)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for pid in a["state"]:
        for key, value in a["state"][pid].items():
            assert torch.equal(value, b["state"][pid][key])


def test_rng_roundtrip():
    tensors, meta = ckpt.rng_state()
    assert tensors["torch_cpu"].dtype == torch.uint8
    expected = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(tensors, __import__("json").loads(__import__("json").dumps(meta)))
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
