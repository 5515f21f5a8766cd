"""LLaVA export/import: transformers' LlavaForConditionalGeneration loads our export and computes our logits."""

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images
from transformers import CLIPVisionConfig, CLIPVisionModel, LlavaForConditionalGeneration

from modalign.config import ModelConfig
from modalign.models.export_llava import export_llava_hf, import_llava_hf
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError

LM = dict(
    name="tiny-llama",
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    intermediate_size=64,
    max_position_embeddings=128,
    vocab_size=320,
)


def _clip_dir(tmp_path):
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(
        image_size=16, patch_size=8, hidden_size=24, intermediate_size=48, num_hidden_layers=3, num_attention_heads=2
    )
    CLIPVisionModel(cfg).save_pretrained(tmp_path / "clip")
    return str(tmp_path / "clip")


def _vlm(vision: dict, connector: str = "mlp", **connector_params):
    torch.manual_seed(1)
    cfg = ModelConfig.model_validate(
        {"kind": "vlm", "vision": vision, "connector": {"name": connector, **connector_params}, "lm": LM}
    )
    return VisionLanguageModel.from_config(cfg, text_corpus=CORPUS).eval()


def _inputs(model, n=2):
    prompts = ["What color is the square?", "Is there a circle?"][:n]
    rows = [model.prompts.encode(model.prompts.chat_prefix(p))[0] for p in prompts]
    batch = model.prompts.pad(rows, side="left")
    return batch["input_ids"], batch["attention_mask"], model.vision.preprocess(images(n))


@pytest.mark.parametrize("feature_layer", [-2, None])
def test_clip_export_matches_transformers_llava(tmp_path, feature_layer):
    model = _vlm({"name": "hf", "path": _clip_dir(tmp_path), "feature_layer": feature_layer})
    out = export_llava_hf(model, tmp_path / "llava")
    llava = LlavaForConditionalGeneration.from_pretrained(out).eval()
    assert llava.config.vision_feature_layer == (feature_layer or -1)
    assert llava.config.vision_feature_select_strategy == "default"
    ids, mask, pixels = _inputs(model)
    with torch.no_grad():
        ours = model.forward_logits(ids, mask, pixels, [1, 1])
        theirs = llava(
            input_ids=ids, attention_mask=mask, pixel_values=pixels, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)
        ).logits
        back = import_llava_hf(out)
        again = back.forward_logits(ids, mask, pixels, [1, 1])
    real = mask.bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-5)
    assert torch.allclose(ours, again, atol=1e-6)
    assert back.generate(images(2), ["Is there a circle?"] * 2, max_new_tokens=4) == model.generate(
        images(2), ["Is there a circle?"] * 2, max_new_tokens=4
    )


def test_vit_tower_exports_with_a_feature_layer_and_is_refused_without(tmp_path):
    vit = {"name": "vit", "image_size": 16, "patch_size": 8, "hidden_size": 24, "num_layers": 2, "num_heads": 2}
    with pytest.raises(ConfigError, match="feature_layer"):
        export_llava_hf(_vlm(vit), tmp_path / "refused")  # tokens after the final layernorm: not a hidden layer
    model = _vlm({**vit, "feature_layer": -1})
    out = export_llava_hf(model, tmp_path / "llava")
    llava = LlavaForConditionalGeneration.from_pretrained(out).eval()
    ids, mask, pixels = _inputs(model, 1)
    with torch.no_grad():
        assert torch.allclose(
            model.forward_logits(ids, mask, pixels, [1]),
            llava(input_ids=ids, attention_mask=mask, pixel_values=pixels).logits,
            atol=1e-5,
        )


def test_non_mlp_or_lora_models_are_refused(tmp_path):
    path = _clip_dir(tmp_path)
    with pytest.raises(ConfigError, match="mlp"):
        export_llava_hf(_vlm({"name": "hf", "path": path}, "linear"), tmp_path / "x")
    n = _vlm({"name": "hf", "path": path}).num_vision_tokens
    with pytest.raises(ConfigError, match="position embedding"):
        export_llava_hf(_vlm({"name": "hf", "path": path}, positions=n), tmp_path / "z")
    with pytest.raises(ConfigError, match="LayerNorm"):
        export_llava_hf(_vlm({"name": "hf", "path": path}, input_norm=True), tmp_path / "n")
    model = _vlm({"name": "hf", "path": path})
    model.enable_lora({"r": 2})
    with pytest.raises(ConfigError, match="merge_lora"):
        export_llava_hf(model, tmp_path / "y")
