import pytest
import torch

from modalign.config import ModelConfig
from modalign.encoders import TEXT_ENCODERS, VISION_ENCODERS
from modalign.models import build_model
from modalign.registry import ConfigError, build


def test_tower_reused_from_a_saved_dual_encoder(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(
        kind="dual",
        vision={"name": "vit", "image_size": 32, "patch_size": 8, "hidden_size": 32, "num_layers": 1, "num_heads": 2},
        text={"name": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2},
        embed_dim=16,
    )
    model = build_model(cfg)
    model.save_pretrained(tmp_path)
    tower = build(VISION_ENCODERS, "vision encoder", "modalign", path=str(tmp_path))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(tower(x).tokens, model.vision(x).tokens)
    text = build(TEXT_ENCODERS, "text encoder", "modalign", path=str(tmp_path))
    batch = text.tokenize(["a red circle"])
    assert torch.equal(text(**batch).pooled, model.text(**batch).pooled)


def test_not_a_model_dir(tmp_path):
    with pytest.raises(ConfigError, match="not a saved modalign model"):
        build(VISION_ENCODERS, "vision encoder", "modalign", path=str(tmp_path))
