"""Audio towers by name: Whisper (CTranslate2, packaged), `conv` from scratch, `hf` on tiny random checkpoints."""

import numpy as np
import pytest
import torch
from tiny_audio import KINDS, make_tiny, tone

from modalign.encoders import AUDIO_ENCODERS
from modalign.registry import ConfigError, build


@pytest.fixture(scope="module")
def tiny_whisper():
    return build(AUDIO_ENCODERS, "audio encoder", "whisper-tiny", window_seconds=None, stride=2)


def test_whisper_tiny_tokens_mask_and_pooled(tiny_whisper):
    clips = [tone(1.0, 300), tone(2.5, 600)]
    inputs = tiny_whisper.preprocess(clips)
    out = tiny_whisper(**inputs)
    # 100 frames/s, 2 frames per encoder token, 2 tokens averaged: 25 tokens per second
    assert tiny_whisper.hidden_size == 384 and out.tokens.shape == (2, 63, 384)
    assert out.mask.sum(1).tolist() == tiny_whisper.num_tokens(inputs).tolist() == [25, 63]
    real = out.tokens[0, :25]
    assert torch.allclose(out.pooled[0], real.mean(0), atol=1e-5)
    alone = tiny_whisper(**tiny_whisper.preprocess(clips[:1]))
    assert torch.allclose(alone.tokens[0, :25], real, atol=1e-5)  # a clip's features do not depend on its batch
    assert tiny_whisper.pretrained_source["name"] == "whisper-tiny" and not list(tiny_whisper.parameters())


def test_whisper_window_is_whisper_own_input(tiny_whisper):
    fixed = build(AUDIO_ENCODERS, "audio encoder", "whisper-tiny", window_seconds=10.0)
    out = fixed(**fixed.preprocess([tone(1.0)]))
    assert out.tokens.shape == (1, 500, 384) and int(out.mask.sum()) == 50
    with pytest.raises(ConfigError, match="at most 30"):
        build(AUDIO_ENCODERS, "audio encoder", "whisper-tiny", window_seconds=31.0)
    with pytest.raises(ConfigError, match="stride"):
        build(AUDIO_ENCODERS, "audio encoder", "whisper-tiny", stride=0)


def test_whisper_base_is_assembled_once_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("MODALIGN_CACHE", str(tmp_path))
    tower = build(AUDIO_ENCODERS, "audio encoder", "whisper-base", window_seconds=None)
    assert (tmp_path / "whisper-base-ct2" / "model.bin").is_file() and tower.hidden_size == 512
    out = tower(**tower.preprocess([tone(0.6)]))
    assert out.tokens.shape == (1, 30, 512)
    (tmp_path / "whisper-base-ct2" / "model.bin").write_bytes(b"damaged")
    with pytest.raises(ConfigError, match="sha256"):
        build(AUDIO_ENCODERS, "audio encoder", "whisper-base")


def test_conv_tower_lengths_and_gradients():
    tower = build(AUDIO_ENCODERS, "audio encoder", "conv", hidden_size=16, strides=[2, 2])
    inputs = tower.preprocess([tone(0.5), tone(1.3)])
    out = tower(**inputs)
    assert out.tokens.shape == (2, 33, 16) and out.mask.sum(1).tolist() == tower.num_tokens(inputs).tolist() == [13, 33]
    out.pooled.sum().backward()
    assert all(p.grad is not None for p in tower.parameters())
    with pytest.raises(ConfigError, match="odd"):
        build(AUDIO_ENCODERS, "audio encoder", "conv", kernel_size=4)


@pytest.mark.parametrize("kind", KINDS)
def test_hf_audio_towers_on_tiny_random_checkpoints(tmp_path, kind):
    tower = build(AUDIO_ENCODERS, "audio encoder", "hf", path=make_tiny(kind, str(tmp_path)))
    clips = [tone(1.2, 440), tone(2.7, 880)]
    inputs = tower.preprocess(clips)
    out = tower(**inputs)
    assert out.tokens.shape[0] == 2 and out.tokens.shape[2] == tower.hidden_size
    assert out.mask.sum(1).tolist() == tower.num_tokens(inputs).tolist()
    assert bool((out.mask[:, :-1] >= out.mask[:, 1:]).all())  # real tokens come first
    alone = tower(**tower.preprocess(clips[:1]))
    assert torch.allclose(alone.pooled[0], out.pooled[0], atol=1e-4)  # padding changes nothing real
    assert tower.pretrained_source["sha256"]


def test_hf_audio_refuses_what_it_cannot_load(tmp_path):
    import transformers as T

    d = make_tiny("wav2vec2", str(tmp_path / "w"))
    (tmp_path / "w" / "preprocessor_config.json").unlink()
    with pytest.raises(ConfigError, match="preprocessor_config"):
        build(AUDIO_ENCODERS, "audio encoder", "hf", path=d)
    T.BertModel(
        T.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    ).save_pretrained(tmp_path / "b")
    T.Wav2Vec2FeatureExtractor().save_pretrained(tmp_path / "b")
    with pytest.raises(ConfigError, match="bert"):
        build(AUDIO_ENCODERS, "audio encoder", "hf", path=str(tmp_path / "b"))
    d = make_tiny("whisper", str(tmp_path / "wh"))
    T.WhisperFeatureExtractor(feature_size=80, chunk_length=30).save_pretrained(d)  # 3000 frames for a 1000-frame model
    with pytest.raises(ConfigError, match="chunk_length"):
        build(AUDIO_ENCODERS, "audio encoder", "hf", path=d)


def test_a_too_long_clip_is_refused_by_every_tower(tiny_whisper):
    with pytest.raises(ValueError, match="longer than"):
        tiny_whisper.preprocess([np.full(31 * 16000, 0.1, np.float32)])


def test_a_freeze_plan_cannot_train_a_fixed_tower(tiny_whisper):
    from test_vlm_tiny_parts import CORPUS

    import modalign as ma
    from modalign.trainer.freeze import apply_freeze_plan

    lm = {"name": "tiny-llama", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "vocab_size": 300}
    model = ma.VisionLanguageModel(vision=None, connector=None, lm=lm, text_corpus=CORPUS, audio=tiny_whisper)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        apply_freeze_plan(model, ["audio", "audio_connector"])
    assert apply_freeze_plan(model, ["audio_connector"]).per_component["audio"] == {"trainable": 0, "frozen": 0}
