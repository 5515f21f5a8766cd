"""LoRA adapters on the VLM's language model (peft), and parameter views that give the trainer disjoint components.

`enable_lora` wraps the LM with `peft.get_peft_model`; `merge_lora` folds the adapters into the base weights and
unwraps (`merge_and_unload`), so a merged model saves and exports like one that never had adapters.
The freeze plan names `lm` (base weights) and `lm.lora` (adapters) separately: as both live in the same modules,
`ParameterView` exposes a chosen set of the LM's parameters as a module of its own without copying them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from torch import nn

from ..config import LoraConfig
from ..registry import ConfigError


class ParameterView(nn.Module):
    """A module whose parameters are the given (shared, not copied) tensors. Never registered inside the model,
    so it does not duplicate entries of the model's state dict."""

    def __init__(self, named_parameters: Iterable[tuple[str, nn.Parameter]]):
        super().__init__()
        for name, p in named_parameters:
            self.register_parameter(name.replace(".", "__"), p)


class LoraMixin:
    _lora_cfg: LoraConfig | None

    def enable_lora(self, cfg: LoraConfig | dict) -> None:
        """Add LoRA adapters to the LM's `cfg.target_modules` (by module name, e.g. q_proj). Adapters start at zero
        (peft's B = 0), so the model's outputs are unchanged until they train."""
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        cfg = cfg if isinstance(cfg, LoraConfig) else LoraConfig.model_validate(cfg)
        if self._lora_cfg is not None:
            if cfg == self._lora_cfg:
                return
            raise ConfigError("LoRA adapters are already enabled with other settings: call merge_lora() first")
        names = {n.rsplit(".", 1)[-1] for n, _ in self.lm.named_modules()}
        missing = [t for t in cfg.target_modules if t not in names]
        if missing:
            raise ConfigError(
                f"lora.target_modules {missing} are not module names of the LM "
                f"(Llama has q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)"
            )
        # peft freezes every base weight; the trainer's freeze plan decides afterwards, so keep the current flags.
        flags = {n: p.requires_grad for n, p in self.lm.named_parameters()}
        peft_cfg = PeftLoraConfig(
            r=cfg.r,
            lora_alpha=cfg.alpha,
            lora_dropout=cfg.dropout,
            target_modules=list(cfg.target_modules),
            bias="none",
        )
        with warnings.catch_warnings():
            # peft (0.21) reads transformers' renamed `is_gradient_checkpointing`; the warning is about peft's call
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.lm = get_peft_model(self.lm, peft_cfg)
        for n, p in self.lm.get_base_model().named_parameters():
            if n in flags:
                p.requires_grad_(flags[n])
        self._lora_cfg = cfg

    def merge_lora(self) -> None:
        """Fold W + (alpha/r) B A into W and remove the adapters."""
        if self._lora_cfg is None:
            raise ConfigError("merge_lora(): no LoRA adapters are enabled")
        self.lm = self.lm.merge_and_unload()
        self._lora_cfg = None

    @property
    def lora_enabled(self) -> bool:
        return self._lora_cfg is not None
