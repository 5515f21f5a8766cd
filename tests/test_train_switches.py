"""Stage switches that trade speed for memory or precision: activation checkpointing (same gradients, recomputed)
and bf16 autocast (runs, close to fp32)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.models import build_model
from modalign.registry import ConfigError
from modalign.trainer.distributed import DistInfo
from modalign.trainer.freeze import set_activation_checkpointing
from modalign.trainer.step import train_step


def _batch(model):
    samples = [{"id": f"s{i}", "image": im, "text": CORPUS[i]} for i, im in enumerate(images(4))]
    return model.collate(samples)


def _grads(model, batch):
    model.zero_grad()
    model.training_loss(batch, "caption")["loss"].backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = build_model(tiny_cfg("mlp"), text_corpus=CORPUS).train()
    batch = _batch(model)
    plain = _grads(model, batch)
    set_activation_checkpointing(model, True)
    assert model.base_lm().model.gradient_checkpointing
    again = _grads(model, batch)
    set_activation_checkpointing(model, False)
    assert not model.base_lm().model.gradient_checkpointing
    assert plain.keys() == again.keys()
    for k in plain:
        torch.testing.assert_close(plain[k], again[k], atol=1e-6, rtol=1e-5)


def test_activation_checkpointing_needs_a_language_model():
    from torch import nn

    with pytest.raises(ConfigError, match="applies to a language model"):
        set_activation_checkpointing(nn.Linear(2, 2), True)


def test_bf16_autocast_step_runs_close_to_fp32():
    torch.manual_seed(0)
    model = build_model(tiny_cfg("mlp"), text_corpus=CORPUS).train()
    batch = _batch(model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    logged = {}
    for precision in ("fp32", "bf16"):
        model.load_state_dict(state)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        logged[precision] = train_step(model, opt, [(batch, 4)], "caption", 4, DistInfo(), 1e-3, 1.0, precision)
    assert logged["bf16"]["skipped"] == 0.0
    assert abs(logged["bf16"]["loss"] - logged["fp32"]["loss"]) < 0.05 * logged["fp32"]["loss"]
    assert logged["bf16"]["loss"] != logged["fp32"]["loss"]  # the forward really ran in bfloat16


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch):
    from modalign.trainer import step

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": False}, raising=False)
    assert step.resolve_precision("auto") == "fp32" and isinstance(step.autocast("auto"), contextlib.nullcontext)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True}, raising=False)
    assert step.resolve_precision("auto") == "bf16" and isinstance(step.autocast("auto"), torch.autocast)
    assert step.resolve_precision("fp32") == "fp32" and step.resolve_precision("bf16") == "bf16"  # as given
