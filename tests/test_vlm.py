"""VisionLanguageModel: collation and labels, the loss, components, LoRA, feature cache, save/load, xattn fusion."""

import pytest
import torch
import torch.nn.functional as F
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.config import LoraConfig
from modalign.encoders.cache import FeatureCache, image_key
from modalign.models import build_model, load_model
from modalign.models.vlm import VisionLanguageModel

CONV = [
    {"from": "human", "value": "<image>\nWhat color is the square?"},
    {"from": "gpt", "value": "blue"},
    {"from": "human", "value": "Is there a circle?"},
    {"from": "gpt", "value": "yes"},
]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(tiny_cfg(), text_corpus=CORPUS)


def _labelled(model, batch, row):
    ids, lab = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
    return model.tokenizer.decode([t for t, x in zip(ids, lab) if x != -100])


def test_collate_labels_only_answers_and_expands_images(model):
    ims = images(2)
    batch = model.collate(
        [{"id": "a", "image": ims[0], "text": "a red circle"}, {"id": "b", "image": ims[1], "conversations": CONV}]
    )
    m = model.prompts.tokens_per_image
    assert (batch["input_ids"] == model.image_token_id).sum(1).tolist() == [m, m]
    assert _labelled(model, batch, 0) == "a red circle</s>"
    assert _labelled(model, batch, 1) == "blue<|end|>yes<|end|>"  # answers + their end-of-turn, nothing else
    assert batch["pixel_values"].shape == (2, 3, 16, 16)
    assert batch["image_keys"] == [image_key(ims[0]), image_key(ims[1])]  # cache keys are image contents
    assert (batch["attention_mask"].sum(1) == (batch["input_ids"] != model.prompts.pad_id).sum(1)).all()


def test_several_images_per_conversation(model):
    conv = [{"from": "human", "value": "<image> and <image>: same?"}, {"from": "gpt", "value": "no"}]
    pair = images(2)
    batch = model.collate([{"id": "p", "images": pair, "conversations": conv}])
    assert (batch["input_ids"] == model.image_token_id).sum() == 2 * model.prompts.tokens_per_image
    assert batch["image_keys"] == [image_key(im) for im in pair] and batch["image_counts"] == [2]
    assert torch.isfinite(model.training_loss(batch, "instruct")["loss"])
    with pytest.raises(ValueError, match="markers"):
        model.collate([{"id": "q", "images": images(2), "conversations": CONV}])


def test_loss_is_next_token_cross_entropy_on_answer_tokens(model):
    batch = model.collate([{"id": "b", "image": images(1)[0], "conversations": CONV}])
    out = model.training_loss(batch, "instruct")
    logits = model.forward_logits(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1])
    lab = batch["labels"][0]
    pos = [t for t in range(1, lab.shape[0]) if lab[t] != -100]
    ref = torch.stack([-F.log_softmax(logits[0, t - 1], -1)[lab[t]] for t in pos]).mean()
    assert torch.allclose(out["loss"], ref, atol=1e-5) and out["answer_tokens"] == len(pos)


def test_image_features_reach_the_lm(model):
    ims = images(2, seed=3)
    batch = model.collate([{"id": str(i), "image": im, "text": "a red circle"} for i, im in enumerate(ims)])
    logits = model.forward_logits(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1, 1])
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)  # same text, different images


def test_components_partition_lora_from_base_weights():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    assert set(m.components()) == {"vision", "connector", "lm"}
    m.enable_lora(LoraConfig(r=2, alpha=4))
    parts = m.components()
    lora_ids = {id(p) for p in parts["lm.lora"].parameters()}
    base_ids = {id(p) for p in parts["lm"].parameters()}
    assert lora_ids and not lora_ids & base_ids
    assert len(lora_ids) + len(base_ids) == len(list(m.lm.parameters()))
    with pytest.raises(Exception, match="target_modules"):
        VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).enable_lora(LoraConfig(target_modules=["nope"]))


def test_merged_lora_equals_unmerged(tmp_path):
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    m.enable_lora(LoraConfig(r=4, alpha=8))
    with torch.no_grad():  # peft starts B at zero: give the adapters a real effect
        for p in m.components()["lm.lora"].parameters():
            p.normal_(0, 0.2)
    m.eval()
    batch = m.collate([{"id": "b", "image": images(1)[0], "conversations": CONV}])
    args = (batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1])
    with torch.no_grad():
        unmerged = m.forward_logits(*args)
        m.save_pretrained(tmp_path / "adapters")
        m.merge_lora()
        merged = m.forward_logits(*args)
        reloaded = load_model(tmp_path / "adapters").forward_logits(*args)
    assert not m.lora_enabled and "lm.lora" not in m.components()
    assert torch.allclose(merged, unmerged, atol=1e-5)
    assert torch.allclose(reloaded, unmerged, atol=1e-5)


def test_save_load_round_trip(model, tmp_path):
    model.eval()
    model.save_pretrained(tmp_path)
    again = load_model(tmp_path)
    assert isinstance(again, VisionLanguageModel)
    assert again.tokenizer.chat_template == model.tokenizer.chat_template
    batch = model.collate([{"id": "a", "image": images(1)[0], "text": "a red circle"}])
    args = (batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1])
    with torch.no_grad():
        assert torch.equal(model.forward_logits(*args), again.forward_logits(*args))


def test_feature_cache_serves_a_frozen_tower(model):
    cache = FeatureCache()
    model.enable_feature_cache(cache)
    try:
        for p in model.vision.parameters():
            p.requires_grad_(False)
        batch = model.collate([{"id": "a", "image": images(1)[0], "text": "a red circle"}])
        first = model.training_loss(batch, "caption")["loss"]
        batch["pixel_values"] = torch.zeros_like(batch["pixel_values"])  # a hit must not look at the pixels
        second = model.training_loss(batch, "caption")["loss"]
        assert cache.misses == 1 and cache.hits == 1 and torch.allclose(first, second)
    finally:
        model.enable_feature_cache(None)
        for p in model.vision.parameters():
            p.requires_grad_(True)


def test_xattn_fusion_keeps_one_marker_and_conditions_on_the_image():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg("xattn", {"heads": 2}), text_corpus=CORPUS)
    with torch.no_grad():  # gates start closed (tanh(0) = 0): open them so the image matters
        for block in m.connector.blocks:
            block.attn_gate.fill_(0.5)
    ims = images(2, seed=5)
    batch = m.collate([{"id": str(i), "image": im, "conversations": CONV} for i, im in enumerate(ims)])
    assert (batch["input_ids"] == m.image_token_id).sum(1).tolist() == [1, 1]
    logits = m.forward_logits(batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1, 1])
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    assert m.connector._media is None  # cleared after the forward
    loss = m.training_loss(batch, "instruct")["loss"]
    loss.backward()
    assert m.connector.blocks[0].attn_gate.grad is not None
    assert not set(map(id, m.connector.parameters())) & set(map(id, m.components()["lm"].parameters()))
    m.eval()
    assert m.answer_many(ims[0], ["What color?", "Is there a circle?"], max_new_tokens=4) == m.generate(
        [ims[0]] * 2, ["What color?", "Is there a circle?"], max_new_tokens=4
    )


def test_bad_objective_and_missing_corpus_are_clear():
    with pytest.raises(Exception, match="text_corpus"):
        VisionLanguageModel.from_config(tiny_cfg())
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    with pytest.raises(Exception, match="caption, instruct or qformer"):
        m.training_loss({}, "contrastive")


def test_connector_positions_true_sizes_the_table_to_the_tower(tmp_path):
    torch.manual_seed(0)
    model = VisionLanguageModel.from_config(tiny_cfg("mlp", {"positions": True}), text_corpus=CORPUS).eval()
    assert model.connector.pos.positions == model.num_vision_tokens == 4
    with torch.no_grad():
        model.connector.pos.table.normal_()
    model.save_pretrained(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert torch.equal(back.connector.pos.table, model.connector.pos.table)
    assert back.generate(images(2), ["Describe the picture."] * 2, max_new_tokens=4) == model.generate(
        images(2), ["Describe the picture."] * 2, max_new_tokens=4
    )
