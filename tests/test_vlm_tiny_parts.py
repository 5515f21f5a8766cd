"""Tiny parts for the VisionLanguageModel tests: a CLIP-vision tower registered as `tiny-clip-test`, a tiny
recipe config, random images and a text corpus. Imported by the other tests/test_vlm*.py files.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModel

from modalign.config import ModelConfig
from modalign.encoders import VISION_ENCODERS
from modalign.encoders.base import EncoderOutput, VisionEncoder

CORPUS = [
    "a red circle above a blue square",
    "two green triangles",
    "Is there a circle in the image?",
    "yes",
    "no",
    "What color is the square?",
    "blue",
    "a small yellow star on the left",
    "Describe the picture.",
]


class TinyClipTower(VisionEncoder):
    """CLIP vision transformer; tokens = hidden_states[feature_layer] without CLS (LLaVA's 'default' select)."""

    def __init__(self, image_size: int = 16, patch_size: int = 8, hidden_size: int = 24, feature_layer: int = -2):
        super().__init__()
        cfg = CLIPVisionConfig(
            image_size=image_size,
            patch_size=patch_size,
            hidden_size=hidden_size,
            intermediate_size=2 * hidden_size,
            num_hidden_layers=2,
            num_attention_heads=2,
        )
        self.model = CLIPVisionModel(cfg)
        self.hidden_size, self.image_size, self.feature_layer = hidden_size, image_size, feature_layer

    def preprocess(self, images) -> torch.Tensor:
        arrs = [
            np.asarray(im.convert("RGB").resize((self.image_size, self.image_size)), dtype=np.float32) / 255.0
            for im in images
        ]
        return (torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) - 0.5) / 0.5  # [B, 3, H, W]

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        return EncoderOutput(tokens=out.hidden_states[self.feature_layer][:, 1:], pooled=out.pooler_output)


VISION_ENCODERS.setdefault("tiny-clip-test", TinyClipTower)


def tiny_cfg(connector: str = "mlp", connector_params: dict | None = None, **lm) -> ModelConfig:
    lm_params = dict(
        name="tiny-llama",
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        vocab_size=320,
    )
    lm_params.update(lm)
    return ModelConfig.model_validate(
        {
            "kind": "vlm",
            "vision": {"name": "tiny-clip-test"},
            "connector": {"name": connector, **(connector_params or {})},
            "lm": lm_params,
        }
    )


def images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)) for _ in range(n)]


def test_tiny_tower_drops_cls():
    t = TinyClipTower()
    out = t(t.preprocess(images(2)))
    assert out.tokens.shape == (2, 4, 24)  # (16/8)^2 patches, no CLS


def test_token_probe_leaves_batch_norm_statistics_alone():
    from modalign.connectors import CONNECTORS
    from modalign.encoders import VISION_ENCODERS
    from modalign.models.lm import build_lm
    from modalign.models.vlm import VisionLanguageModel, probe_vision_tokens

    vision = VISION_ENCODERS["efficientnet-lite0"](image_size=32)  # a 1x1 map: train-mode BN would fail
    before = {k: v.clone() for k, v in vision.state_dict().items() if "running" in k}
    cfg = tiny_cfg("mlp")
    lm, tok = build_lm(cfg.lm.name, cfg.lm.params(), ["a red circle", "a blue square"])
    connector = CONNECTORS["mlp"](in_dim=vision.hidden_size, out_dim=lm.config.hidden_size)
    vision.train()
    model = VisionLanguageModel.from_modules(cfg, vision, connector, lm, tok)
    assert model.num_vision_tokens == 1 and vision.training  # the build probed the tower in eval mode ...
    assert probe_vision_tokens(model.vision) == 1 and vision.training  # ... and so does a later probe
    after = {k: v for k, v in vision.state_dict().items() if "running" in k}
    assert all(torch.equal(before[k], after[k]) for k in before)
