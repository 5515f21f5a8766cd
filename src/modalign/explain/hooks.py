"""Where gradients are taken inside a vision tower: at the input of one of its transformer layers (a leaf tensor
swapped in by a forward pre-hook, so the tower code stays untouched), and the evaluation-mode context both
attribution methods run in.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Eval mode (no dropout) for the duration; every submodule's own mode is restored after."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def encoder_layers(tower: nn.Module) -> nn.ModuleList | None:
    """The tower's stack of transformer layers (`...encoder.layers` / `...encoder.layer`), or None (a CNN)."""
    best = None
    for name, module in tower.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "layer") and "encoder" in name:
            if best is None or len(module) > len(best):
                best = module
    return best


class LayerInputLeaf:
    """Context manager: the hidden states entering `layer` are replaced by a leaf tensor (`.leaf`, [B, T, D]) that
    requires grad, so d(score)/d(hidden) is available after the forward whatever the parameters' flags are."""

    def __init__(self, layer: nn.Module):
        self.layer = layer
        self.leaf: torch.Tensor | None = None
        self._handle = None

    def _hook(self, module, args, kwargs):
        from_kwargs = not args
        hidden = kwargs["hidden_states"] if from_kwargs else args[0]
        self.leaf = hidden.detach().requires_grad_(True)
        if from_kwargs:
            return args, {**kwargs, "hidden_states": self.leaf}
        return (self.leaf, *args[1:]), kwargs

    def __enter__(self) -> "LayerInputLeaf":
        self._handle = self.layer.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
