"""Which image patches drove which words of a VisionLanguageModel's text: attention rollout and gradient x input.

The text is scored the way `VisionLanguageModel.score` scores it (caption format `<s><image>text`, or a chat turn
when `prompt` is given); a span's target is the log-probability of its tokens, each read at the position before
it (next-token prediction).
- rollout: the LM runs once with eager attention to return its attention weights; rollout row t-1 over the M image
  positions, mapped to patches by the connector (`connector_map.connector_patch_matrix`), averaged over the span's
  tokens. Prefix fusion only: with `xattn` the image never occupies LM positions.
- gradient: d(sum of the span's token log-probs) / d(vision tokens) times the tokens, summed over channels
  (`on="tokens"`, the tower's output the connector reads), or the same on the pixels (`on="pixels"`, pooled to
  the patch grid). Works for every connector, xattn included.
Every map is returned on the tower's patch grid, [h, w], as numpy.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ..models.vlm_prompts import IGNORE_INDEX
from ..registry import ConfigError
from .connector_map import connector_patch_matrix
from .hooks import eval_mode
from .rollout import attention_rollout
from .targets import grid_side


def scored_tokens(model, text: str, spans: list[tuple[int, int]], prompt: str | None = None):
    """(input_ids [1, T], one list of token positions per span) for `text` scored after the image (and prompt).

    The model's own `prompts.encode` labels the tokens that start inside a span (image markers expanded as in
    training); a span is widened to the whitespace before it, where byte-level BPE tokens of a word start.
    """
    if getattr(model, "tiler", None) is not None:
        raise ConfigError("attribution maps cover one tile's patch grid; this model tiles images (vision.anyres)")
    prefix = model._prompt_texts(1, prompt, True)[0]
    ids = None
    positions = []
    for a, b in spans:
        while a > 0 and text[a - 1].isspace():
            a -= 1
        row, labels = model.prompts.encode(prefix + text, [(len(prefix) + a, len(prefix) + b)])
        ids = row if ids is None else ids
        toks = [t for t, lab in enumerate(labels) if lab != IGNORE_INDEX and t >= 1]
        if not toks:
            raise ValueError(f"span {text[a:b]!r} covers no token of the scored text (cut off by the LM's max length?)")
        positions.append(toks)
    return torch.tensor([ids]), positions


@contextlib.contextmanager
def eager_attention(lm):
    """Eager attention for the duration: SDPA kernels do not return attention weights."""
    old = lm.config._attn_implementation
    lm.set_attn_implementation("eager")
    try:
        yield
    finally:
        lm.set_attn_implementation(old)


def rollout_maps(model, image, text: str, spans: list[tuple[int, int]], prompt: str | None = None) -> list[np.ndarray]:
    """Attention-rollout map [h, w] per span (prefix-fusion VLMs)."""
    if model.fusion != "prefix":
        raise ConfigError(
            f"attention rollout needs image tokens in the LM sequence; a {model.fusion} model has "
            f"none: use method='gradient'"
        )
    ids, positions = scored_tokens(model, text, spans, prompt)
    pixel_values = model.vision.preprocess([image])  # [1, 3, H, W]
    with eval_mode(model), torch.no_grad(), eager_attention(model.base_lm()):
        feats = model.vision(pixel_values).tokens  # [1, N, Dv]
        embeds = model.merge_embeddings(ids, model.connector(feats))  # [1, T, D]
        t = ids.shape[1]
        out = model.lm(
            inputs_embeds=embeds,
            attention_mask=torch.ones_like(ids),
            position_ids=torch.arange(t)[None],
            use_cache=False,
            output_attentions=True,
        )
        rollout = attention_rollout(out.attentions)[0]  # [T, T]
        to_patches = connector_patch_matrix(model.connector, feats)[0]  # [M, N]
    image_pos = (ids[0] == model.image_token_id).nonzero().squeeze(-1)  # [M]
    side = grid_side(feats.shape[1])
    maps = []
    for toks in positions:
        rows = rollout[[p - 1 for p in toks]][:, image_pos].mean(0)  # [M]
        maps.append((rows @ to_patches).reshape(side, side).numpy())  # [h, w]
    return maps


def _span_logprobs(logits: torch.Tensor, ids: torch.Tensor, positions: list[list[int]]) -> list[torch.Tensor]:
    logp = logits[0].float().log_softmax(-1)  # [T, V]
    return [sum(logp[p - 1, ids[0, p]] for p in toks) for toks in positions]


def gradient_maps(
    model, image, text: str, spans: list[tuple[int, int]], prompt: str | None = None, on: str = "tokens"
) -> list[np.ndarray]:
    """Gradient x input map [h, w] per span, on the vision tokens or on the pixels."""
    if on not in ("tokens", "pixels"):
        raise ValueError(f"gradient maps of a VLM are taken on 'tokens' or 'pixels', not {on!r}")
    ids, positions = scored_tokens(model, text, spans, prompt)
    pixel_values = model.vision.preprocess([image])  # [1, 3, H, W]
    with eval_mode(model), torch.enable_grad():
        if on == "pixels":
            pixel_values.requires_grad_(True)
        feats = model.vision(pixel_values).tokens  # [1, N, Dv]
        leaf = feats.detach().requires_grad_(True) if on == "tokens" else feats
        try:
            if model.fusion == "xattn":
                model.connector.set_media(leaf)
                embeds = model.lm.get_input_embeddings()(ids)  # [1, T, D]
            else:
                embeds = model.merge_embeddings(ids, model.connector(leaf))  # [1, T, D]
            t = ids.shape[1]
            logits = model.lm(
                inputs_embeds=embeds,
                attention_mask=torch.ones_like(ids),
                position_ids=torch.arange(t)[None],
                use_cache=False,
            ).logits  # [1, T, V]
        finally:
            if model.fusion == "xattn":
                model.connector.clear_media()
        targets = _span_logprobs(logits, ids, positions)
        wrt = leaf if on == "tokens" else pixel_values
        side = grid_side(feats.shape[1])
        maps = []
        for k, target in enumerate(targets):
            (grad,) = torch.autograd.grad(target, wrt, retain_graph=k < len(targets) - 1)
            maps.append(gradient_times_input(grad, wrt.detach(), side, on))
    return maps


def gradient_times_input(grad: torch.Tensor, value: torch.Tensor, side: int, on: str) -> np.ndarray:
    """Sum over channels of grad * input, as an [side, side] grid (pixels are averaged over each patch)."""
    if on == "pixels":
        m = (grad * value).sum(1, keepdim=True)  # [1, 1, H, W]
        return F.adaptive_avg_pool2d(m, side)[0, 0].numpy()  # [h, w]
    return (grad * value).sum(-1)[0, -side * side :].reshape(side, side).numpy()  # [h, w]
