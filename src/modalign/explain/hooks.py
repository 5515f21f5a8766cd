"""Where gradients are taken inside a vision tower, and the evaluation-mode context both attribution methods run in.

A leaf tensor is swapped in by a forward hook (the tower code stays untouched) at the output of the first
LayerNorm of a transformer layer (`layer_norm_leaf`), i.e. the normalised tokens that layer's attention reads. Not
at the layer's input: in a pre-norm block a patch reaches the other tokens only through that LayerNorm, which is
scale invariant, so gradient x input there sums to exactly zero for every patch (the CLS of a ViT sees the patches
only that way in the last layer). pytorch-grad-cam targets the same module (`blocks[-1].norm1`) for ViTs.
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
    """The tower's stack of transformer layers (the longest `...layers` / `...layer` list), or None (a CNN)."""
    best = None
    for name, module in tower.named_modules():
        is_stack = isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layers", "layer")
        if is_stack and (best is None or len(module) > len(best)):
            best = module
    return best


def layer_norm_leaf(layer: nn.Module) -> OutputLeaf:
    """An `OutputLeaf` on the first LayerNorm inside `layer` (ViT `layernorm_before`, CLIP/SigLIP `layer_norm1`)."""
    norm = next((m for m in layer.modules() if isinstance(m, nn.LayerNorm)), None)
    if norm is None:
        raise ValueError(f"{type(layer).__name__} has no LayerNorm to take gradients at; use on='pixels'")
    return OutputLeaf(norm)


class OutputLeaf:
    """Context manager: the output of `module` is replaced by a leaf tensor (`.leaf`, [B, T, D]) that requires grad,
    so d(score)/d(output) is available after the forward whatever the parameters' requires_grad flags are."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.leaf: torch.Tensor | None = None
        self._handle = None

    def _hook(self, module, args, output):
        self.leaf = output.detach().requires_grad_(True)
        return self.leaf

    def __enter__(self) -> OutputLeaf:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()
