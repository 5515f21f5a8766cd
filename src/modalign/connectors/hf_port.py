"""Load weights of transformers' reference blocks into our connectors (renaming only - the maths is the same).

Each port is a list of (regex, replacement) rules from the reference state-dict keys to ours; `load_renamed` applies
them, reshapes where only the layout differs (Idefics keeps gates as [1, 1, D], we keep [D]) and loads strictly,
so a missing or unexpected key is an error rather than a silently random weight. Used by the reference tests and
by anyone starting from a released BLIP-2 Q-Former / Idefics checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import torch
from torch import nn


def load_renamed(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    rules: Iterable[tuple[str, str]],
    skip: Iterable[str] = (),
    extra: Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:
    """Rename `state` by the first matching rule, drop keys matching `skip`, add `extra`, load strictly."""
    rules, skip = list(rules), [re.compile(s) for s in skip]
    target = module.state_dict()
    out: dict[str, torch.Tensor] = dict(extra or {})
    for key, value in state.items():
        if any(s.search(key) for s in skip):
            continue
        for pattern, repl in rules:
            if re.fullmatch(pattern, key):
                new = re.sub(pattern, repl, key)
                break
        else:
            raise KeyError(f"no rule maps reference weight {key!r}; extend the port's rules")
        if new not in target:
            raise KeyError(f"reference weight {key!r} maps to {new!r}, which {type(module).__name__} does not have")
        out[new] = value.reshape(target[new].shape)
    module.load_state_dict(out, strict=True)
    return module


BLIP2_QFORMER_RULES = [
    (r"layernorm\.(weight|bias)", r"input_norm.\1"),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.query\.(\w+)", r"layers.\1.self_attn.q_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.key\.(\w+)", r"layers.\1.self_attn.k_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.value\.(\w+)", r"layers.\1.self_attn.v_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(\w+)", r"layers.\1.self_attn.o_proj.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(\w+)", r"layers.\1.self_norm.\2"),
    (r"encoder\.layer\.(\d+)\.crossattention\.attention\.query\.(\w+)", r"layers.\1.cross_attn.q_proj.\2"),
    (r"encoder\.layer\.(\d+)\.crossattention\.attention\.key\.(\w+)", r"layers.\1.cross_attn.k_proj.\2"),
    (r"encoder\.layer\.(\d+)\.crossattention\.attention\.value\.(\w+)", r"layers.\1.cross_attn.v_proj.\2"),
    (r"encoder\.layer\.(\d+)\.crossattention\.output\.dense\.(\w+)", r"layers.\1.cross_attn.o_proj.\2"),
    (r"encoder\.layer\.(\d+)\.crossattention\.output\.LayerNorm\.(\w+)", r"layers.\1.cross_norm.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate_query\.dense\.(\w+)", r"layers.\1.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output_query\.dense\.(\w+)", r"layers.\1.fc2.\2"),
    (r"encoder\.layer\.(\d+)\.output_query\.LayerNorm\.(\w+)", r"layers.\1.ffn_norm.\2"),
]


def qformer_from_blip2(
    qformer: nn.Module,
    hf_qformer_state: Mapping[str, torch.Tensor],
    query_tokens: torch.Tensor,
    projection_state: Mapping[str, torch.Tensor] | None = None,
    feature_norm_state: Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:
    """Fill a `QFormer` from `Blip2QFormerModel.state_dict()`, BLIP-2's `query_tokens` [1, K, H] and optionally its
    `language_projection` / vision `post_layernorm` states. The text-only branch (`intermediate.`, `output.`, used
    when `use_qformer_text_input`) has no counterpart and is skipped; unset parts keep their current values."""
    current = qformer.state_dict()
    extra = {"query_tokens": query_tokens}
    for prefix, given in (("proj.", projection_state), ("feature_norm.", feature_norm_state)):
        for name, value in current.items():
            if name.startswith(prefix):
                extra[name] = given[name[len(prefix) :]] if given is not None else value
    return load_renamed(
        qformer,
        hf_qformer_state,
        BLIP2_QFORMER_RULES,
        skip=[r"layer\.\d+\.intermediate\.", r"layer\.\d+\.output\."],
        extra=extra,
    )


IDEFICS_PERCEIVER_RULES = [
    (r"latents", r"latents"),
    (r"blocks\.(\d+)\.0\.context_layer_norm\.(\w+)", r"layers.\1.context_norm.\2"),
    (r"blocks\.(\d+)\.0\.latents_layer_norm\.(\w+)", r"layers.\1.latents_norm.\2"),
    (r"blocks\.(\d+)\.0\.q_layer_norm\.(\w+)", r"layers.\1.attn.q_norm.\2"),
    (r"blocks\.(\d+)\.0\.k_layer_norm\.(\w+)", r"layers.\1.attn.k_norm.\2"),
    (r"blocks\.(\d+)\.0\.(q|k|v)_proj\.weight", r"layers.\1.attn.\2_proj.weight"),
    (r"blocks\.(\d+)\.0\.output_proj\.weight", r"layers.\1.attn.o_proj.weight"),
    (r"blocks\.(\d+)\.1\.ln\.(\w+)", r"layers.\1.ff_norm.\2"),
    (r"blocks\.(\d+)\.1\.fc\.weight", r"layers.\1.fc1.weight"),
    (r"blocks\.(\d+)\.1\.c_proj\.weight", r"layers.\1.fc2.weight"),
    (r"layer_norm\.(\w+)", r"norm.\1"),
]


def perceiver_from_idefics(perceiver: nn.Module, hf_state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Fill a `PerceiverResampler` (act="relu", qk_norm="layernorm" if the reference has q/k norms) from
    `IdeficsPerceiverResampler.state_dict()`. Idefics has no time/position embeddings: ours are set to zero.
    The output projection keeps its current weights (Idefics has none)."""
    current = perceiver.state_dict()
    extra = {k: torch.zeros_like(v) for k, v in current.items() if k in ("time_embed", "pos_embed")}
    extra.update({k: v for k, v in current.items() if k.startswith("proj.")})
    return load_renamed(perceiver, hf_state, IDEFICS_PERCEIVER_RULES, extra=extra)


IDEFICS_XATTN_RULES = [
    (r"alpha_cross_attn", r"attn_gate"),
    (r"alpha_dense", r"ff_gate"),
    (r"cross_attn\.(q|k|v|o)_proj\.weight", r"attn.\1_proj.weight"),
    (r"cross_attn\.q_layer_norm\.weight", r"attn.q_norm.weight"),
    (r"cross_attn\.k_layer_norm\.weight", r"attn.k_norm.weight"),
    (r"mlp\.(gate|up|down)_proj\.weight", r"ff.\1_proj.weight"),
    (r"input_layernorm\.weight", r"attn_norm.weight"),
    (r"post_attention_layernorm\.weight", r"ff_norm.weight"),
]


def xattn_block_from_idefics(block: nn.Module, hf_state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Fill a `GatedCrossAttentionBlock(norm="rmsnorm", ffn="swiglu", eps=config.rms_norm_eps, gate=alpha_type,
    qk_norm="rmsnorm" if qk_layer_norms)` from `IdeficsGatedCrossAttentionLayer.state_dict()`."""
    return load_renamed(block, hf_state, IDEFICS_XATTN_RULES, skip=[r"rotary_emb\."])
