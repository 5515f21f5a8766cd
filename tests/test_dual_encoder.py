"""DualEncoder on tiny from-scratch towers: contract, losses, save/load, locking and the LiT feature cache."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from modalign.config import ModelConfig
from modalign.encoders.cache import FeatureCache, image_key
from modalign.losses import clip_loss, siglip_loss
from modalign.models import build_model, load_model
from modalign.models.dual_encoder import DualEncoder
from modalign.registry import ConfigError

TINY_VIT = {"name": "vit", "image_size": 16, "patch_size": 8, "hidden_size": 32, "num_layers": 1, "num_heads": 2}
TINY_TEXT = {"name": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_length": 16}


def make_model(**overrides) -> DualEncoder:
    torch.manual_seed(0)
    cfg = ModelConfig.model_validate(
        {"kind": "dual", "vision": TINY_VIT, "text": TINY_TEXT, "embed_dim": 8, **overrides}
    )
    return DualEncoder.from_config(cfg)


def samples(n=4, seed=0):
    rng = np.random.default_rng(seed)
    words = ["a red square", "two blue circles", "a green triangle above", "nothing at all", "one big star"]
    return [
        {
            "id": f"img{i}",
            "image": Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)),
            "text": words[i % len(words)] + f" {i}",
            "label": i % 2,
        }
        for i in range(n)
    ]


def test_build_contract_and_initial_scales():
    clip = make_model()
    assert set(clip.components()) == {"vision", "text", "head"}
    assert clip.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-6)
    assert clip.logit_bias is None
    sig = make_model(loss="siglip")
    assert sig.logit_scale.item() == pytest.approx(10.0, rel=1e-6)
    assert sig.logit_bias.item() == -10.0
    assert any(p is sig.head.logit_bias for p in sig.components()["head"].parameters())


def test_logit_scale_is_clamped_at_100():
    model = make_model()
    with torch.no_grad():
        model.head.log_logit_scale.fill_(math.log(500.0))
    assert model.logit_scale.item() == pytest.approx(100.0)


def test_collate_and_clip_training_loss_match_the_loss_function():
    model = make_model()
    batch = model.collate(samples())
    assert batch["pixel_values"].shape == (4, 3, 16, 16)
    assert batch["ids"] == [image_key(s["image"]) for s in samples()]  # cache keys are image contents
    assert batch["labels"].tolist() == [0, 1, 0, 1] and len(batch["texts"]) == 4
    out = model.training_loss(batch, "contrastive")
    img = model.encode_image(batch["pixel_values"])
    txt = model.encode_text(batch["input_ids"], batch["attention_mask"])
    assert img.shape == (4, 8) and torch.allclose(img.norm(dim=-1), torch.ones(4))
    assert out["loss"].item() == pytest.approx(clip_loss(img, txt, model.logit_scale).item(), abs=1e-6)
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-6)
    out["loss"].backward()
    for name, part in model.components().items():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), name


def test_siglip_model_chunked_equals_unchunked():
    plain, chunked = make_model(loss="siglip"), make_model(loss="siglip", siglip_chunk_size=2)
    chunked.load_state_dict(plain.state_dict())
    batch = plain.collate(samples(5))
    a, b = plain.training_loss(batch, "contrastive"), chunked.training_loss(batch, "contrastive")
    img = plain.encode_image(batch["pixel_values"])
    txt = plain.encode_text(batch["input_ids"], batch["attention_mask"])
    ref = siglip_loss(img, txt, plain.logit_scale, plain.logit_bias)
    assert a["loss"].item() == pytest.approx(ref.item(), abs=1e-6)
    assert b["loss"].item() == pytest.approx(a["loss"].item(), abs=1e-6)
    a["loss"].backward()
    b["loss"].backward()
    for (n, p), q in zip(plain.named_parameters(), chunked.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=n)


def test_embed_batched_equals_encode_and_restores_modes():
    model = make_model(head="mlp")
    model.train()
    data = samples(5)
    images, texts = [s["image"] for s in data], [s["text"] for s in data]
    e1 = model.embed_images(images, batch_size=2)
    e2 = model.embed_images(images, batch_size=64)
    torch.testing.assert_close(e1, e2, rtol=1e-5, atol=1e-6)
    t1, t2 = model.embed_texts(texts, batch_size=2), model.embed_texts(texts)
    torch.testing.assert_close(t1, t2, rtol=1e-5, atol=1e-6)
    assert e1.shape == (5, 8) and not e1.requires_grad
    assert torch.allclose(t1.norm(dim=-1), torch.ones(5), atol=1e-6)
    assert model.training and model.vision.training  # back to the caller's mode
    assert model.embed_texts([]).shape == (0, 8)


def test_save_and_load_round_trip(tmp_path):
    model = make_model(loss="siglip", head="mlp")
    with torch.no_grad():
        model.head.logit_bias.fill_(-3.5)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "manifest.json", "model.safetensors"]
    assert json.loads((tmp_path / "config.json").read_text())["model"]["vision"]["hidden_size"] == 32
    loaded = load_model(tmp_path)
    assert isinstance(loaded, DualEncoder) and loaded.logit_bias.item() == -3.5
    data = samples(3)
    torch.testing.assert_close(
        loaded.embed_images([s["image"] for s in data]), model.embed_images([s["image"] for s in data])
    )
    torch.testing.assert_close(
        loaded.embed_texts([s["text"] for s in data]), model.embed_texts([s["text"] for s in data])
    )


def test_locked_vision_tower_uses_feature_cache_and_matches_uncached():
    cached, plain = make_model(), make_model()
    for m in (cached, plain):
        m.lock("vision")
        m.train()
    assert not cached.vision.training  # a locked tower stays in eval mode inside a training loop
    cache = FeatureCache()
    cached.enable_feature_cache(cache)
    calls = []
    cached.vision.register_forward_hook(lambda *args: calls.append(1))
    data = samples(4)

    first = cached.collate(data)
    assert first["pixel_values"] is not None
    loss1 = cached.training_loss(first, "contrastive")["loss"]
    assert (cache.misses, cache.hits, len(calls)) == (4, 0, 1)

    second = cached.collate(data)
    assert second["pixel_values"] is None  # every image cached: no preprocessing
    loss2 = cached.training_loss(second, "contrastive")["loss"]
    assert (cache.hits, len(calls)) == (4, 1)  # the tower did not run again
    reference = plain.training_loss(plain.collate(data), "contrastive")["loss"]
    assert loss1.item() == pytest.approx(reference.item(), abs=1e-6)
    assert loss2.item() == pytest.approx(reference.item(), abs=1e-6)

    loss2.backward()
    assert all(p.grad is None for p in cached.vision.parameters())
    assert cached.head.image_proj.weight.grad.abs().sum() > 0


def test_locked_text_tower_is_cached_by_text_and_trainable_tower_is_not():
    model = make_model()
    model.lock("text")
    cache = FeatureCache()
    model.enable_feature_cache(cache)
    data = samples(3)
    model.training_loss(model.collate(data), "contrastive")
    assert sorted(cache._memory) == sorted("text:" + s["text"] for s in data)  # vision trains: not cached
    first = model.training_loss(model.collate(data), "contrastive")["loss"]
    batch = model.collate(data)
    assert batch["input_ids"] is None  # every text is cached: nothing to tokenize
    assert torch.allclose(model.training_loss(batch, "contrastive")["loss"], first)


def test_errors_say_what_to_change():
    model = make_model()
    with pytest.raises(ConfigError, match="contrastive"):
        model.training_loss(model.collate(samples(2)), "caption")
    with pytest.raises(ConfigError, match="components"):
        model.lock("connector")
    with pytest.raises(ValueError, match="image.*text"):
        model.collate([{"id": "x", "image": samples(1)[0]["image"]}])
    with pytest.raises(ValueError, match="feature cache"):
        model.encode_image(None, ["img0"])
    with pytest.raises(ConfigError, match="unknown vision encoder"):
        build_model(ModelConfig.model_validate({"kind": "dual", "vision": {"name": "nope"}, "text": TINY_TEXT}))


def test_embed_image_features_are_the_pooled_tower_output_before_the_head():
    model = make_model()
    images = [s["image"] for s in samples(3)]
    feats = model.embed_image_features(images, batch_size=2)
    with torch.no_grad():
        model.eval()
        expected = model.vision(model.vision.preprocess(images)).pooled
    assert feats.shape == (3, model.vision.hidden_size)
    assert torch.allclose(feats, expected, atol=1e-6)


def test_label_positives_pass_class_labels_to_the_loss():
    model = make_model(positives="label")
    batch = model.collate(samples(4))
    out = model.training_loss(batch, "contrastive")
    img = model.encode_image(batch["pixel_values"], batch["ids"])
    txt = model.encode_text(batch["input_ids"], batch["attention_mask"], batch["texts"])
    expected = clip_loss(img, txt, model.logit_scale, labels=torch.tensor([0, 1, 0, 1]))
    assert torch.allclose(out["loss"], expected)
    assert not torch.allclose(out["loss"], clip_loss(img, txt, model.logit_scale))
    unlabelled = [{k: v for k, v in s.items() if k != "label"} for s in samples(4)]
    with pytest.raises(ConfigError, match="positives: label needs"):
        model.training_loss(model.collate(unlabelled), "contrastive")
    with pytest.raises(ValueError, match="implemented for loss: clip"):
        make_model(positives="label", loss="siglip")


def test_evaluation_reuses_features_cached_in_training_by_image_content():
    model = make_model()
    model.lock("vision")
    cache = FeatureCache()
    model.enable_feature_cache(cache)
    data = samples(4)
    model.training_loss(model.collate(data), "contrastive")  # fills the cache
    assert len(cache) == 4
    calls = []
    model.vision.register_forward_hook(lambda *a: calls.append(1))
    cached = model.embed_images([s["image"] for s in data], batch_size=2)
    feats = model.embed_image_features([s["image"] for s in data])
    assert calls == []  # every picture came from the cache
    model.enable_feature_cache(None)
    assert torch.allclose(cached, model.embed_images([s["image"] for s in data]), atol=1e-6)
    assert torch.allclose(feats, model.embed_image_features([s["image"] for s in data]), atol=1e-6)
    # the key is the content: a copy hits, a different picture or size does not
    im = data[0]["image"]
    assert image_key(im.copy()) == image_key(im) != image_key(im.resize((10, 10))) != image_key(data[1]["image"])
