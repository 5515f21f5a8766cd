"""Freeze plans: a stage names the components that train; every other parameter is frozen.

`lm.lora` trains only LoRA adapter weights inside the language model (parameters whose name contains `lora_`);
the adapters are added by the model itself (`model.enable_lora(LoraConfig)`) the first time a stage asks for them, so
their layout is the model's business and a resumed run replays the same structural change before loading weights.
Frozen components are put in eval mode: a frozen tower is then a fixed function (no dropout, no batch-norm
statistics drift), which is also what makes its cached features equal to recomputed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..config import StageConfig
from ..registry import ConfigError


@dataclass
class FreezeReport:
    trainable: int = 0  # parameter elements that train
    frozen: int = 0  # parameter elements that do not
    per_component: dict[str, dict[str, int]] = field(default_factory=dict)
    unassigned: list[str] = field(default_factory=list)  # parameters in no component (frozen)

    def as_dict(self) -> dict:
        return {
            "trainable": self.trainable,
            "frozen": self.frozen,
            "per_component": self.per_component,
            "unassigned": self.unassigned,
        }


def prepare_stage(model: nn.Module, stage: StageConfig) -> None:
    """Structural changes a stage needs before its freeze plan applies (LoRA adapters)."""
    if "lm.lora" not in stage.train:
        return
    if "lm.lora" in model.components():
        return
    if not hasattr(model, "enable_lora"):
        raise ConfigError(
            f"stage {stage.name!r} trains lm.lora but {type(model).__name__} has no LoRA support "
            "(no `enable_lora`): train `lm` or `connector` instead"
        )
    model.enable_lora(stage.lora)


def _lora_params(module: nn.Module) -> dict[int, nn.Parameter]:
    return {id(p): p for n, p in module.named_parameters() if "lora_" in n}


def apply_freeze_plan(model: nn.Module, train: list[str]) -> FreezeReport:
    components = model.components()
    missing = [c for c in train if c not in components and not (c == "lm.lora" and "lm" in components)]
    if missing:
        raise ConfigError(
            f"the freeze plan names {missing}, which {type(model).__name__} does not have; "
            f"its components are {sorted(components)}"
        )
    trainable_ids: set[int] = set()
    for name in train:
        if name == "lm.lora":
            lora = _lora_params(components.get("lm.lora", components["lm"]))
            if not lora:
                raise ConfigError("the freeze plan trains lm.lora but the language model has no LoRA adapters")
            trainable_ids.update(lora)
        else:
            params = list(components[name].parameters())
            if not params:  # e.g. a CTranslate2 Whisper tower: a fixed function, nothing a stage could train
                raise ConfigError(
                    f"the freeze plan trains {name!r}, which has no trainable parameters "
                    f"({type(components[name]).__name__}); remove it from `train`"
                )
            trainable_ids.update(id(p) for p in params)

    report = FreezeReport()
    seen: set[int] = set()
    for p in model.parameters():  # deduplicates tied weights
        if id(p) in seen:
            continue
        seen.add(id(p))
        p.requires_grad_(id(p) in trainable_ids)
        if p.requires_grad:
            report.trainable += p.numel()
        else:
            report.frozen += p.numel()

    owned: set[int] = set()
    for name, module in components.items():
        params = list({id(p): p for p in module.parameters()}.values())
        owned.update(id(p) for p in params)
        report.per_component[name] = {
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "frozen": sum(p.numel() for p in params if not p.requires_grad),
        }
    report.unassigned = [n for n, p in model.named_parameters() if id(p) not in owned]

    set_train_modes(model)
    return report


def set_train_modes(model: nn.Module) -> None:
    """The whole model in train mode, then every component with nothing trainable back to eval mode."""
    model.train()
    for name, module in model.components().items():
        if name != "lm.lora" and not any(p.requires_grad for p in module.parameters()):
            module.eval()


def set_activation_checkpointing(model: nn.Module, on: bool) -> None:
    """Recompute the LM's decoder activations in the backward pass (transformers' gradient checkpointing), or not.
    Models without an LM (dual encoders) ignore the switch."""
    if not hasattr(model, "base_lm"):
        if on:
            raise ConfigError(f"activation_checkpointing applies to a language model; {type(model).__name__} has none")
        return
    lm = model.base_lm()
    new = hasattr(lm, "activation_checkpointing_enable")  # transformers >= 5.24 renamed the switch
    if on:
        # non-reentrant: correct with frozen layers whose inputs need gradients (a connector under a frozen LM)
        kwargs = {"use_reentrant": False}
        if new:
            lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    elif getattr(lm, "is_activation_checkpointing" if new else "is_gradient_checkpointing", False):
        lm.activation_checkpointing_disable() if new else lm.gradient_checkpointing_disable()
