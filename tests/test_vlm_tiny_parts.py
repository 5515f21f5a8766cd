"""Tiny parts for the VisionLanguageModel tests: a CLIP-vision tower, and (until the connector package provides
them) `mlp` and `xattn` connectors written to the connector contract of docs/INTERFACES.md.

Imported by the other tests/test_vlm*.py files; the tests here check the parts keep the contract they stand in for.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from modalign.config import ModelConfig
from modalign.connectors import CONNECTORS
from modalign.modalities import VISION_ENCODERS
from modalign.modalities.base import EncoderOutput, VisionEncoder

CORPUS = [
    "a red circle above a blue square", "two green triangles", "Is there a circle in the image?", "yes", "no",
    "What color is the square?", "blue", "a small yellow star on the left", "Describe the picture.",
]


class TinyClipTower(VisionEncoder):
    """CLIP vision transformer; tokens = hidden_states[feature_layer] without CLS (LLaVA's 'default' select)."""

    def __init__(self, image_size: int = 16, patch_size: int = 8, hidden_size: int = 24, feature_layer: int = -2):
        super().__init__()
        cfg = CLIPVisionConfig(image_size=image_size, patch_size=patch_size, hidden_size=hidden_size,
                               intermediate_size=2 * hidden_size, num_hidden_layers=2, num_attention_heads=2)
        self.model = CLIPVisionModel(cfg)
        self.hidden_size, self.image_size, self.feature_layer = hidden_size, image_size, feature_layer

    def preprocess(self, images) -> torch.Tensor:
        arrs = [np.asarray(im.convert("RGB").resize((self.image_size, self.image_size)), dtype=np.float32) / 255.0
                for im in images]
        return (torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) - 0.5) / 0.5           # [B, 3, H, W]

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        return EncoderOutput(tokens=out.hidden_states[self.feature_layer][:, 1:], pooled=out.pooler_output)


class StandInMLP(nn.Module):
    fusion = "prefix"

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.linear_1, self.act, self.linear_2 = nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim)

    def num_tokens(self, n: int) -> int:
        return n

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class StandInXAttn(nn.Module):
    """Gated cross-attention before each decoder layer (Flamingo), gates at 0.5 so the test sees an effect."""

    fusion = "xattn"

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.attn = nn.MultiheadAttention(out_dim, 1, batch_first=True)
        self.gate = nn.Parameter(torch.tensor(0.5))
        self.media = self.mask = None

    def install(self, layers):
        for layer in layers:
            layer.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if self.media is None:
            return None
        h = args[0]                                                                       # [B, T, D]
        kv = self.proj(self.media).expand(h.shape[0], -1, -1)                             # [B, N, D]
        pad = None if self.mask is None else ~self.mask.bool().expand(h.shape[0], -1)
        x, _ = self.attn(h, kv, kv, key_padding_mask=pad)
        return (h + torch.tanh(self.gate) * x,) + args[1:], kwargs

    def set_media(self, features, mask=None):
        self.media, self.mask = features, mask

    def clear_media(self):
        self.media = self.mask = None


VISION_ENCODERS.setdefault("tiny-clip-test", TinyClipTower)
CONNECTORS.setdefault("mlp", StandInMLP)
CONNECTORS.setdefault("xattn-test", StandInXAttn)


def tiny_cfg(connector: str = "mlp", **lm) -> ModelConfig:
    lm_params = dict(name="tiny-llama", hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                     max_position_embeddings=128, vocab_size=320)
    lm_params.update(lm)
    return ModelConfig.model_validate({"kind": "vlm", "vision": {"name": "tiny-clip-test"},
                                       "connector": {"name": connector}, "lm": lm_params})


def images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(n)]


def test_stand_in_mlp_keeps_the_prefix_contract():
    c = CONNECTORS["mlp"](in_dim=24, out_dim=32)
    assert c.fusion == "prefix" and c(torch.zeros(2, 4, 24)).shape == (2, c.num_tokens(4), 32)


def test_tiny_tower_drops_cls():
    t = TinyClipTower()
    out = t(t.preprocess(images(2)))
    assert out.tokens.shape == (2, 4, 24)  # (16/8)^2 patches, no CLS
