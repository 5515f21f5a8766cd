"""Deepen a trained VLM's language model without changing what it computes: block expansion (LLaMA Pro, Wu et al.
2024).

A small LM that has stopped improving can be given more layers and trained on, instead of training a deeper one from
scratch through every earlier stage. Each new block is a copy of the block before it with its two output projections
(attention `o_proj`, MLP `down_proj`) set to zero: the block then adds nothing to the residual stream, so the
expanded model's logits equal the original's exactly, and training starts from the model it was (the copied input
projections get gradient as soon as the output projections move off zero). New blocks are spread evenly, one after
the last layer of each of `add` equal groups, as LLaMA Pro interleaves them.
"""

from __future__ import annotations

import copy

from ..registry import ConfigError

_ZEROED = ("self_attn.o_proj.weight", "self_attn.o_proj.bias", "mlp.down_proj.weight", "mlp.down_proj.bias")


def insertion_points(n_layers: int, add: int) -> list[int]:
    """The original layers each followed by a new block: the last of each of `add` equal groups."""
    if not 1 <= add <= n_layers:
        raise ConfigError(
            f"add between 1 and the LM's {n_layers} layers new blocks (one after each group of "
            f"layers), got {add}; expand twice for more"
        )
    return [((g + 1) * n_layers) // add - 1 for g in range(add)]


def _decoder_layers(lm):
    layers = getattr(getattr(lm, "model", None), "layers", None)
    if layers is None or not all(
        hasattr(b, "self_attn") and hasattr(b.self_attn, "o_proj") and hasattr(getattr(b, "mlp", None), "down_proj")
        for b in layers
    ):
        raise ConfigError(
            f"{type(lm).__name__}: block expansion needs a Llama-style decoder (model.layers with "
            "self_attn.o_proj and mlp.down_proj)"
        )
    return layers


def expand_lm_depth(model, add: int):
    """A new VisionLanguageModel whose LM has `add` more decoder layers, computing the same logits as `model`."""
    from .saving import reference_parts
    from .vlm import VisionLanguageModel

    if getattr(model, "_lora_cfg", None) is not None:
        raise ConfigError("this model carries LoRA adapters: merge them first (model.merge_lora()), then expand")
    if model.fusion == "xattn" or any(model.media_fusion(m) == "xattn" for m in model.media_modalities()):
        raise ConfigError(
            "the xattn connector places its gated blocks by LM layer: expanding the LM under it is not "
            "supported (retrain with a deeper `lm:` instead)"
        )
    base = model.base_lm()
    n = len(_decoder_layers(base))
    after = set(insertion_points(n, add))
    order = []  # (source layer, is a new zero-output copy) for each layer of the expanded LM
    for i in range(n):
        order.append((i, False))
        if i in after:
            order.append((i, True))
    config = copy.deepcopy(base.config)
    config.num_hidden_layers = n + add
    new_lm = type(base)(config)
    old = base.state_dict()
    state = {k: v for k, v in old.items() if not k.startswith("model.layers.")}
    for j, (i, is_new) in enumerate(order):
        prefix = f"model.layers.{i}."
        for k, v in old.items():
            if k.startswith(prefix):
                rest = k[len(prefix) :]
                state[f"model.layers.{j}.{rest}"] = v.new_zeros(v.shape) if is_new and rest in _ZEROED else v.clone()
    new_lm.load_state_dict(state, strict=True)

    cfg = model.cfg.model_copy(deep=True)
    if "num_layers" in cfg.lm.params():  # tiny-llama records its depth; an `hf` LM takes it from the saved lm/ config
        cfg.lm = type(cfg.lm).model_validate({**cfg.lm.model_dump(), "num_layers": n + add})
    expanded = VisionLanguageModel.around_lm(cfg, new_lm, model.tokenizer)
    # an unchanged pretrained tower is already what the fresh build loaded: copying it in would mark it as changed
    kept = tuple(f"{name}." for name in reference_parts(model) if name != "lm")
    rest = {
        k: v for k, v in model.state_dict().items() if not k.startswith("lm.") and not (kept and k.startswith(kept))
    }
    missing, unexpected = expanded.load_state_dict(
        {**rest, **{f"lm.{k}": v for k, v in new_lm.state_dict().items()}}, strict=False
    )
    missing = [k for k in missing if not (kept and k.startswith(kept))]
    if missing or unexpected:
        raise RuntimeError(f"expanded model does not fit: missing {missing}, unexpected {unexpected}")
    return expanded.train(model.training)


def probe_logit_change(model, expanded) -> float:
    """Max |logit difference| of four greedy steps of both models on a plain grey image (0 for an exact expansion;
    inf when they stop after a different number of tokens)."""
    from PIL import Image

    image = Image.new("RGB", (64, 64), (128, 128, 128))  # every tower resizes to its own input size
    images = [image] if model.vision is not None else None  # a speech-only model: the prompt alone
    _, a = model.eval().generate(images, ["Describe the image."], max_new_tokens=4, return_logits=True)
    _, b = expanded.eval().generate(images, ["Describe the image."], max_new_tokens=4, return_logits=True)
    return float((a - b).abs().max()) if a.shape == b.shape else float("inf")
