"""The from-scratch vision tower `vit`: an HF `ViTConfig` built from a few sizes, randomly initialised.

Tokens are the patch tokens after the final layernorm, without CLS: [B, (image_size / patch_size)^2, hidden_size].
Pooled is the layer-normed CLS token (`pool="cls"`, the default) or the mean of the patch tokens (`pool="mean"`).
Images are resized (bicubic) to a square and normalised with mean = std = 0.5, i.e. to [-1, 1].
"""

from __future__ import annotations

from ..registry import ConfigError
from .hf_vision import HFVisionTower
from .preprocess import ImageProcessing


def build_vit(
    *,
    image_size: int = 64,
    patch_size: int = 8,
    hidden_size: int = 128,
    num_layers: int = 4,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    dropout: float = 0.0,
    pool: str = "cls",
    feature_layer: int | None = None,
) -> HFVisionTower:
    from transformers import ViTConfig, ViTModel

    if image_size % patch_size:
        raise ConfigError(f"vit: image_size={image_size} must be a multiple of patch_size={patch_size}")
    if hidden_size % num_heads:
        raise ConfigError(f"vit: hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    if pool not in ("cls", "mean"):
        raise ConfigError(f"vit: pool={pool!r} must be 'cls' or 'mean'")
    config = ViTConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=int(hidden_size * mlp_ratio),
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    model = ViTModel(config, add_pooling_layer=False)  # the pooler (dense+tanh) is a classifier's, not ours
    spec = {
        "name": "vit",
        "image_size": image_size,
        "patch_size": patch_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "mlp_ratio": mlp_ratio,
        "dropout": dropout,
        "pool": pool,
        "feature_layer": feature_layer,
    }
    return HFVisionTower(
        model,
        ImageProcessing.square(image_size),
        "vit",
        spec,
        feature_layer=feature_layer,
        pool="mean" if pool == "mean" else "default",
    )
