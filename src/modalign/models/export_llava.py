"""Interop with transformers' LLaVA: export an mlp-connector VLM to a `LlavaForConditionalGeneration` directory and
import one back.

LLaVA computes: vision_tower(pixels).hidden_states[vision_feature_layer], minus CLS when
vision_feature_select_strategy == "default" -> multi_modal_projector (linear_1, act, linear_2) -> written into the
`<image>` placeholder positions -> the causal LM (transformers 5.x, models/llava/modeling_llava.py
`LlavaModel.get_image_features`). Our tower's token choice is not assumed: the export probes the tower and finds the
(layer, strategy) pair that reproduces its tokens exactly, and refuses towers LLaVA cannot express (e.g. a ViT whose
tokens pass the final layernorm: set the tower's `feature_layer` to make it exportable).

The export directory also holds `vision_tower/` (the tower as a plain HF checkpoint plus preprocessor_config.json), so
`import_llava_hf` can rebuild the tower as modalign's `hf` vision encoder, and a `LlavaProcessor` (image processor,
tokenizer, chat template, image-token count) plus a generation config that stops where modalign's decoding stops, so
`AutoProcessor` + `LlavaForConditionalGeneration.generate` answer as the model does.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlavaConfig,
    LlavaForConditionalGeneration,
    PreTrainedModel,
)

from ..config import ModelConfig
from ..registry import ConfigError


def _check_exportable(model) -> tuple[nn.Module, PreTrainedModel]:
    if model.vision is None or getattr(model, "media_modalities", list)():
        raise ConfigError(
            "a LLaVA checkpoint holds one image tower: a model with audio or video parts, or without "
            "an image tower, does not export to it"
        )
    if model.fusion != "prefix":
        raise ConfigError("only prefix-fusion VLMs export to LLaVA (xattn blocks have no LLaVA counterpart)")
    if model.lora_enabled:
        raise ConfigError("the VLM has unmerged LoRA adapters: call model.merge_lora() before exporting")
    c = model.connector
    if (
        not (hasattr(c, "linear_1") and hasattr(c, "linear_2"))
        or not isinstance(getattr(c, "act", None), nn.GELU)
        or c.act.approximate != "none"
        or c.linear_1.bias is None
    ):
        raise ConfigError(
            "LLaVA's projector is linear_1 -> exact GELU -> linear_2 with biases: use "
            "`connector: {name: mlp}` (act: gelu, bias: true)"
        )
    if getattr(getattr(c, "pos", None), "positions", 0):
        raise ConfigError("LLaVA's projector has no position embedding: export an mlp connector without `positions`")
    if getattr(getattr(c, "pos", None), "norm", None) is not None:
        raise ConfigError("LLaVA's projector has no input LayerNorm: export an mlp connector without `input_norm`")
    if c.linear_1.out_features != c.linear_2.out_features:
        raise ConfigError("LLaVA's projector hidden width is the LM width: leave the mlp connector's hidden_dim unset")
    hf_vision = getattr(model.vision, "model", None)
    if not isinstance(hf_vision, PreTrainedModel):
        raise ConfigError(
            "LLaVA export needs a transformers vision tower (vision `hf` with a CLIP/SigLIP/ViT "
            "checkpoint, or `vit`); this tower has no `.model` PreTrainedModel"
        )
    return c, hf_vision


@torch.no_grad()
def find_feature_selection(tower: nn.Module, hf_vision: PreTrainedModel) -> tuple[int, str]:
    """The (vision_feature_layer, vision_feature_select_strategy) under which LLaVA sees our tower's tokens."""
    size = tower.image_size
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randn(2, 3, size, size, generator=gen)
    ours = tower(pixels).tokens  # [2, N, D]
    hidden = hf_vision(pixel_values=pixels, output_hidden_states=True).hidden_states  # L+1 x [2, 1?+N, D]
    for idx in range(len(hidden) - 1, -1, -1):
        for strategy, feats in (("default", hidden[idx][:, 1:]), ("full", hidden[idx])):
            if feats.shape == ours.shape and torch.allclose(feats, ours, atol=1e-6, rtol=0):
                return idx - len(hidden), strategy
    raise ConfigError(
        "the vision tower's tokens are not any hidden layer of its HF model (with or without CLS), so "
        "LLaVA cannot reproduce them; give the tower a `feature_layer` (e.g. -2 as LLaVA does)"
    )


def _preprocessor_config(tower) -> dict:
    p = getattr(tower, "processing", None)
    if p is None:
        return {}
    size = {"shortest_edge": p.shortest_edge} if p.shortest_edge else {"height": p.height, "width": p.width}
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": size,
        "do_center_crop": bool(p.shortest_edge),
        "crop_size": {"height": p.height, "width": p.width},
        "resample": int(p.resample),
        "do_rescale": True,
        "rescale_factor": p.rescale_factor,
        "do_normalize": True,
        "image_mean": list(p.mean),
        "image_std": list(p.std),
        "do_convert_rgb": True,
    }


def export_llava_hf(model, out_dir: str | Path) -> Path:
    """Write `out_dir` so that `LlavaForConditionalGeneration.from_pretrained(out_dir)` computes our logits."""
    out_dir = Path(out_dir)
    connector, hf_vision = _check_exportable(model)
    layer, strategy = find_feature_selection(model.vision, hf_vision)
    lm = model.base_lm()
    config = LlavaConfig(
        vision_config=hf_vision.config.to_dict(),
        text_config=lm.config.to_dict(),
        image_token_index=model.image_token_id,
        image_seq_length=model.prompts.tokens_per_image,
        projector_hidden_act="gelu",
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
        multimodal_projector_bias=True,
        tie_word_embeddings=bool(lm.config.tie_word_embeddings),
    )
    llava = LlavaForConditionalGeneration(config).eval()
    missing, unexpected = llava.model.vision_tower.load_state_dict(hf_vision.state_dict(), strict=False)
    if unexpected or any("pooler" not in k for k in missing):  # a ViT pooler is unused by LLaVA
        raise ConfigError(f"vision weights do not map onto LLaVA's tower: missing {missing}, unexpected {unexpected}")
    llava.model.multi_modal_projector.linear_1.load_state_dict(connector.linear_1.state_dict())
    llava.model.multi_modal_projector.linear_2.load_state_dict(connector.linear_2.state_dict())
    llava.model.language_model.load_state_dict(lm.get_decoder().state_dict())
    llava.lm_head.load_state_dict(lm.get_output_embeddings().state_dict())
    llava.generation_config.eos_token_id = model.stop_token_ids()  # modalign stops at </s> and at <|end|>
    llava.generation_config.pad_token_id = model.prompts.pad_id
    llava.save_pretrained(str(out_dir))
    model.tokenizer.save_pretrained(str(out_dir))
    pre = _preprocessor_config(model.vision)
    if pre:
        _save_processor(out_dir, model, hf_vision, pre, strategy)
    hf_vision.save_pretrained(str(out_dir / "vision_tower"))
    if pre:
        for d in (out_dir, out_dir / "vision_tower"):
            (d / "preprocessor_config.json").write_text(json.dumps(pre, indent=2))
    return out_dir


def _save_processor(out_dir: Path, model, hf_vision: PreTrainedModel, pre: dict, strategy: str) -> None:
    """A LlavaProcessor whose <image> expands to the model's token count and whose template is the model's."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    patch = int(hf_vision.config.patch_size)
    grid = (pre["crop_size"]["height"] // patch) * (pre["crop_size"]["width"] // patch)
    # LLaVA counts grid + extra tokens (CLS) and drops one under the "default" strategy
    extra = model.prompts.tokens_per_image - grid + (1 if strategy == "default" else 0)
    if extra < 0:
        raise ConfigError(f"the tower's {model.prompts.tokens_per_image} tokens are fewer than its {grid} patches")
    kwargs = {k: v for k, v in pre.items() if k != "image_processor_type"}
    LlavaProcessor(
        image_processor=CLIPImageProcessor(**kwargs),
        tokenizer=model.tokenizer,
        patch_size=patch,
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=extra,
        chat_template=model.tokenizer.chat_template,
    ).save_pretrained(str(out_dir))


def import_llava_hf(directory: str | Path):
    """A LLaVA checkpoint directory -> VisionLanguageModel (vision `hf`, connector `mlp`, LM `hf`)."""
    from ..connectors import CONNECTORS
    from ..encoders.hf_vision import build_hf_vision
    from .vlm import VisionLanguageModel

    directory = Path(directory)
    llava = LlavaForConditionalGeneration.from_pretrained(str(directory), dtype=torch.float32).eval()
    cfg = llava.config
    if not isinstance(cfg.vision_feature_layer, int):
        raise ConfigError("LLaVA checkpoints that concatenate several vision layers are not supported")
    vt_dir = directory / "vision_tower"
    if not (vt_dir / "config.json").exists():
        llava.model.vision_tower.save_pretrained(str(vt_dir))
    tower = build_hf_vision(path=str(vt_dir), feature_layer=int(cfg.vision_feature_layer))
    has_cls = tower.family != "siglip"
    if has_cls != (cfg.vision_feature_select_strategy == "default"):
        raise ConfigError(
            f"vision_feature_select_strategy={cfg.vision_feature_select_strategy!r} with a "
            f"{tower.family} tower is not what modalign's hf tower computes (it drops CLS iff present)"
        )
    tower.model.load_state_dict(llava.model.vision_tower.state_dict(), strict=False)
    proj = llava.model.multi_modal_projector
    connector = CONNECTORS["mlp"](in_dim=proj.linear_1.in_features, out_dim=proj.linear_2.out_features, act="gelu")
    connector.linear_1.load_state_dict(proj.linear_1.state_dict())
    connector.linear_2.load_state_dict(proj.linear_2.state_dict())
    lm = AutoModelForCausalLM.from_config(cfg.text_config)
    lm.get_decoder().load_state_dict(llava.model.language_model.state_dict())
    lm.get_output_embeddings().load_state_dict(llava.lm_head.state_dict())
    tok = AutoTokenizer.from_pretrained(str(directory))
    tok.padding_side = "left"
    mcfg = ModelConfig.model_validate(
        {
            "kind": "vlm",
            "vision": {"name": "hf", "path": str(vt_dir), "feature_layer": int(cfg.vision_feature_layer)},
            "connector": {"name": "mlp"},
            "lm": {"name": "hf", "path": str(directory)},
        }
    )
    model = VisionLanguageModel.from_modules(mcfg, tower, connector, lm, tok)
    if model.image_token_id != cfg.image_token_id:
        raise ConfigError(
            f"the tokenizer's <image> id {model.image_token_id} differs from the checkpoint's "
            f"image_token_index {cfg.image_token_id}"
        )
    return model.eval()
