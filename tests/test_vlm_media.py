"""One token stream: <image>, <audio> and <video> in any order and number, each through its own tower and
connector into one LM; placeholder counts checked; cached decoding == recomputation; saves reload exactly; image-only
models unchanged."""

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg
from tiny_audio import tone

import modalign as ma
from modalign.config import ModelConfig
from modalign.models import build_model
from modalign.trainer.freeze import apply_freeze_plan

LM = {"name": "tiny-llama", "hidden_size": 32, "num_layers": 2, "num_heads": 4, "vocab_size": 320}
AUDIO = {"name": "conv", "hidden_size": 16, "strides": [4, 4]}  # one token per 160 ms
VIDEO = {"name": "frames", "num_frames": 4, "pool": "mean"}


def conv(q, a="yes"):
    return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]


def frames(n, seed=0):
    return images(n, seed)


def build(audio_connector="mlp", video_connector="mlp", **kw):
    torch.manual_seed(0)
    return ma.VisionLanguageModel(
        vision="tiny-clip-test",
        connector="mlp",
        lm=LM,
        text_corpus=CORPUS,
        audio=AUDIO,
        audio_connector=audio_connector,
        video=VIDEO,
        video_connector=video_connector,
        **kw,
    )


@pytest.fixture(scope="module")
def model():
    return build().eval()


def test_placeholders_in_any_order_and_number(model):
    ids = {m: model.tokenizer.convert_tokens_to_ids(f"<{m}>") for m in ("image", "audio", "video")}
    sample = {
        "id": "mix",
        "images": images(2),
        "audios": [tone(0.8), tone(1.6, 880)],
        "video": frames(3),
        "conversations": conv("<audio> then <image>, <video>, <audio> and <image>: same?"),
    }
    batch = model.collate([sample, {"id": "a", "audio": tone(0.32), "conversations": conv("<audio>\nWhat is it?")}])
    counts = {m: (batch["input_ids"] == i).sum(1).tolist() for m, i in ids.items()}
    assert counts["audio"] == [5 + 10, 2]  # ceil(frames / 16) tokens per clip, one LM position each (mlp)
    assert counts["video"] == [3, 0] and counts["image"] == [2 * model.prompts.tokens_per_image, 0]
    order = [t for t in batch["input_ids"][0].tolist() if t in ids.values()]
    runs = [t for k, t in enumerate(order) if k == 0 or order[k - 1] != t]
    assert runs == [ids["audio"], ids["image"], ids["video"], ids["audio"], ids["image"]]  # text order kept
    assert torch.isfinite(model.training_loss(batch, "instruct")["loss"])


def test_marker_counts_are_checked_with_clear_errors(model):
    with pytest.raises(ValueError, match=r"1 <audio> markers but the sample has 2"):
        model.collate([{"id": "x", "audios": [tone(1), tone(1)], "conversations": conv("<audio> hello")}])
    with pytest.raises(ValueError, match=r"1 <video> markers but the sample has 0"):
        model.collate([{"id": "x", "conversations": conv("<video> hello")}])
    with pytest.raises(ValueError, match="places media itself"):
        model.collate([{"id": "x", "audio": tone(1), "text": "a <audio> caption"}])
    image_only = build_model(tiny_cfg(), text_corpus=CORPUS)
    with pytest.raises(ValueError, match="no audio tower"):
        image_only.collate([{"id": "x", "image": images(1)[0], "conversations": conv("<image><audio> hi")}])
    with pytest.raises(ValueError, match="no audio tower"):
        image_only.collate([{"id": "x", "image": images(1)[0], "audio": tone(1), "text": "hi"}])


def test_caption_objective_on_clips_labels_only_the_text(model):
    batch = model.collate([{"id": "c", "audio": tone(0.64), "text": "two green triangles"}])
    ids, lab = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert model.tokenizer.decode([t for t, x in zip(ids, lab) if x != -100]) == "two green triangles</s>"
    assert ids.count(model.tokenizer.convert_tokens_to_ids("<audio>")) == 4


def test_audio_reaches_the_lm_and_cached_decoding_equals_recomputation(model):
    clips = [tone(0.9, 300), tone(0.9, 1500)]
    answers, logits = model.generate(None, ["What is it?"] * 2, audio=clips, max_new_tokens=5, return_logits=True)
    assert not torch.allclose(logits[0, 0], logits[1, 0], atol=1e-4)  # same text, different sounds
    for i, clip in enumerate(clips):
        alone, alone_logits = model.generate(None, ["What is it?"], audio=[clip], max_new_tokens=5, return_logits=True)
        assert alone == [answers[i]]
        greedy = alone_logits[0].argmax(-1).tolist()
        text = model.prompts.chat_prefix("What is it?", with_image=False, markers=("<audio>",))
        mb = model.media_batch("audio", [[clip]])
        ids = model.prompts.encode(text, (), None, model._row_media_counts({"audio": mb}, 1)[0])[0] + greedy
        ids = torch.tensor([ids])
        full = model.forward_logits(ids, torch.ones_like(ids), media={"audio": mb})[0, -len(greedy) - 1 : -1]
        assert torch.allclose(alone_logits[0], full, atol=1e-4)


@pytest.mark.parametrize(
    "audio_connector, video_connector",
    [
        (
            {"name": "perceiver", "num_latents": 3, "heads": 2},
            {"name": "perceiver", "num_latents": 2, "heads": 2, "max_frames": 4},
        ),
        ({"name": "xattn", "heads": 2}, {"name": "xattn", "heads": 2}),
        ({"name": "qformer", "num_queries": 2, "hidden_dim": 16, "num_layers": 1, "heads": 2}, "linear"),
        ({"name": "pixel-shuffle", "scale": 2, "layout": "sequence"}, "mlp"),
    ],
)
def test_every_connector_accepts_audio_and_video_tokens(audio_connector, video_connector):
    m = build(audio_connector, video_connector).eval()
    sample = {
        "id": "s",
        "image": images(1)[0],
        "audio": tone(1.0),
        "video": frames(4),
        "conversations": conv("<image><video><audio> ?"),
    }
    batch = m.collate([sample, {"id": "t", "audio": tone(0.5), "conversations": conv("<audio> ?")}])
    assert torch.isfinite(m.training_loss(batch, "instruct")["loss"])
    out = m.generate([images(1)[0]], ["?"], audio=[tone(0.7)], video=[frames(2)], max_new_tokens=3, num_beams=2)
    assert len(out) == 1


def test_components_freeze_plans_and_cache():
    m = build()
    parts = m.components()
    assert set(parts) == {"vision", "connector", "lm", "audio", "audio_connector", "video", "video_connector"}
    report = apply_freeze_plan(m, ["audio", "audio_connector", "video"])
    assert report.per_component["audio_connector"]["frozen"] == 0 and report.per_component["lm"]["trainable"] == 0
    assert report.per_component["video"]["trainable"] == sum(p.numel() for p in m.video.parameters())
    assert report.per_component["vision"]["trainable"] == 0  # the video reads frames with the frozen image tower
    from modalign.encoders.cache import FeatureCache

    m.enable_feature_cache(FeatureCache())
    batch = m.collate([{"id": "v", "video": frames(4), "audio": tone(1.0), "conversations": conv("<video><audio>?")}])
    first = m.training_loss(batch, "instruct")["loss"]
    assert len(m._feature_cache) == 4  # the frozen image tower's four frames; the trained audio tower is not cached
    assert torch.allclose(m.training_loss(batch, "instruct")["loss"], first)


def test_saves_reload_exactly_and_image_only_configs_are_unchanged(tmp_path):
    m = build().eval()
    sample = {
        "id": "s",
        "image": images(1)[0],
        "audio": tone(1.0),
        "video": frames(3),
        "conversations": conv("<image><video><audio>?"),
    }
    batch = m.collate([sample])
    loaded = ma.load(m.save_pretrained(tmp_path / "m"))
    assert set(loaded.components()) == set(m.components())
    with torch.no_grad():
        assert torch.equal(
            m.training_loss(batch, "instruct")["loss"],
            loaded.training_loss(loaded.collate([sample]), "instruct")["loss"],
        )
    dumped = tiny_cfg().model_dump(mode="json")
    assert not {"audio", "audio_connector", "video", "video_connector"} & set(dumped)
    image_only = build_model(tiny_cfg(), text_corpus=CORPUS)
    assert "<audio>" not in image_only.tokenizer.get_vocab()  # no new token, no new embedding row


def test_a_speech_only_model_has_no_vision_parts(tmp_path):
    torch.manual_seed(0)
    m = ma.VisionLanguageModel(vision=None, connector=None, lm=LM, text_corpus=CORPUS, audio=AUDIO)
    assert set(m.components()) == {"lm", "audio", "audio_connector"}
    assert m.cfg.vision is None and ModelConfig.model_validate(m.cfg.model_dump()) == m.cfg
    with pytest.raises(ValueError, match="no vision tower"):
        m.collate([{"id": "x", "image": images(1)[0], "text": "hi"}])
    out = ma.load(m.save_pretrained(tmp_path / "s")).generate(None, None, audio=[tone(0.5)], max_new_tokens=2)
    assert len(out) == 1
    with pytest.raises(ValueError, match="at least one of"):
        ModelConfig(kind="vlm", lm={"name": "tiny-llama"})
    with pytest.raises(ValueError, match="audio_connector"):
        ModelConfig(kind="vlm", lm={"name": "tiny-llama"}, audio={"name": "conv"})


def test_token_noise_never_writes_a_placeholder(model):
    from modalign.trainer.token_noise import replacement_ids

    ids = set(replacement_ids(model.tokenizer).tolist())
    assert not ids & set(model.placeholder_ids().values()) and model.image_token_id not in ids
