"""`xattn` connector: Flamingo's gated cross-attention, run inside a frozen causal LM before every n-th layer.

`GatedCrossAttentionBlock` is x += tanh(attn_gate) * xattn(norm(x), media); x += tanh(ff_gate) * ffn(norm(x)).
Both gates start at 0, so at initialisation the LM computes exactly what it computed before (tanh(0) * y == 0 and
x + 0 == x bit for bit). Flamingo's choices (LayerNorm, GELU FFN, scalar gates) are the defaults; Idefics' (RMSNorm,
SwiGLU FFN, per-channel gates, q/k norms) are settings, and with them the block computes what transformers'
`IdeficsGatedCrossAttentionLayer` computes (`hf_port.xattn_block_from_idefics` maps its weights).

`XAttnConnector.install(lm.model.layers)` attaches one block per chosen layer through a forward *pre-hook*: the
LM's module tree and state-dict keys stay untouched (its checkpoint still loads, LoRA still finds its targets), the
blocks are parameters of the connector only (so freezing `lm` never freezes them), and the hook works with any
layer signature - transformers 5.x layers take hidden_states first and return a tensor. Media are set per batch
with `set_media(features, mask)`; the blocks read them at every forward, including each KV-cached decoding step
(cross-attention keys come from the media, not from the cache, so a step of one token sees the same media).
"""

from __future__ import annotations

import torch
from torch import nn

from modalign.connectors.attention import Attention, check_mask, make_norm, rows_with_context, split_heads
from modalign.connectors.perceiver import PerceiverResampler
from modalign.connectors.projectors import TokenPositions, check_features, make_activation
from modalign.registry import ConfigError


class FeedForward(nn.Module):
    """`gelu`: Linear-GELU-Linear (Flamingo); `swiglu`: down(silu(gate(x)) * up(x)) (Llama, Idefics). No biases."""

    def __init__(self, dim: int, ff_dim: int, kind: str):
        super().__init__()
        self.kind = kind
        if kind == "gelu":
            self.fc1 = nn.Linear(dim, ff_dim, bias=False)
            self.act = make_activation("gelu")
            self.fc2 = nn.Linear(ff_dim, dim, bias=False)
        elif kind == "swiglu":
            self.gate_proj = nn.Linear(dim, ff_dim, bias=False)
            self.up_proj = nn.Linear(dim, ff_dim, bias=False)
            self.down_proj = nn.Linear(ff_dim, dim, bias=False)
            self.act = make_activation("silu")
        else:
            raise ConfigError(f"unknown ffn {kind!r}; choose gelu or swiglu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "gelu":
            return self.fc2(self.act(self.fc1(x)))
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class GatedCrossAttentionBlock(nn.Module):
    """Text hidden states [B, T, d_model] read media [B, N, d_media]; returns [B, T, d_model]."""

    def __init__(
        self,
        d_model: int,
        d_media: int,
        heads: int,
        head_dim: int | None = None,
        ff_dim: int | None = None,
        norm: str = "layernorm",
        ffn: str = "gelu",
        gate: str = "float",
        qk_norm: str | None = None,
        eps: float = 1e-5,
    ):
        super().__init__()
        if gate not in ("float", "vector"):
            raise ConfigError(f"unknown gate {gate!r}; choose float (one scalar, Flamingo) or vector (per channel)")
        head_dim = split_heads(heads, d_model, head_dim, "xattn")
        self.d_model, self.d_media = d_model, d_media
        self.attn_norm = make_norm(norm, d_model, eps)
        self.attn = Attention(
            d_model, d_media, heads, head_dim, out_dim=d_model, bias=False, qk_norm=qk_norm, qk_norm_eps=eps
        )
        self.ff_norm = make_norm(norm, d_model, eps)
        self.ff = FeedForward(d_model, ff_dim or 4 * d_model, ffn)
        gate_shape = (1,) if gate == "float" else (d_model,)
        self.attn_gate = nn.Parameter(torch.zeros(gate_shape))
        self.ff_gate = nn.Parameter(torch.zeros(gate_shape))

    def forward(self, x: torch.Tensor, media: torch.Tensor, media_mask: torch.Tensor | None = None) -> torch.Tensor:
        attended = self.attn(self.attn_norm(x), media, media_mask)  # [B, T, D]
        keep = rows_with_context(media_mask)  # [B, 1, 1]; samples without media get no cross-attention
        if keep is not None:
            attended = attended * keep.to(attended.dtype)
        x = x + torch.tanh(self.attn_gate) * attended
        return x + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(x))  # [B, T, D]


class XAttnConnector(nn.Module):
    """Gated cross-attention blocks before every `every`-th decoder layer (0, every, 2*every, ...).

    Blocks are created by `install(decoder_layers)` (or up front with `num_layers=` = the LM's layer count, which a
    model loading a checkpoint uses to have parameters before it installs). `num_latents > 0` puts Flamingo's
    Perceiver Resampler in front: media become that many tokens of width in_dim.
    """

    fusion = "xattn"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        every: int = 1,
        heads: int = 8,
        head_dim: int | None = None,
        ff_dim: int | None = None,
        norm: str = "layernorm",
        ffn: str = "gelu",
        gate: str = "float",
        qk_norm: str | None = None,
        eps: float = 1e-5,
        num_latents: int = 0,
        resampler_depth: int = 2,
        num_layers: int | None = None,
        positions: int = 0,
    ):
        super().__init__()
        if every < 1:
            raise ConfigError(f"xattn every must be >= 1 (a block before every n-th LM layer), got {every}")
        self.in_dim, self.out_dim, self.every = in_dim, out_dim, every
        self._block_args = dict(
            d_model=out_dim,
            d_media=in_dim,
            heads=heads,
            head_dim=head_dim,
            ff_dim=ff_dim,
            norm=norm,
            ffn=ffn,
            gate=gate,
            qk_norm=qk_norm,
            eps=eps,
        )
        self.pos = TokenPositions(positions, in_dim)  # learned places for CNN cells (see projectors.py)
        self.resampler = (
            PerceiverResampler(
                in_dim, in_dim, num_latents=num_latents, depth=resampler_depth, heads=heads, project=False
            )
            if num_latents
            else None
        )
        self.blocks = nn.ModuleList()
        self.num_layers: int | None = None
        if num_layers is not None:
            self._make_blocks(num_layers)
        self._hooks: list = []
        self._media: torch.Tensor | None = None
        self._media_mask: torch.Tensor | None = None

    def _make_blocks(self, num_layers: int) -> None:
        self.num_layers = num_layers
        self.blocks.extend(GatedCrossAttentionBlock(**self._block_args) for _ in range(0, num_layers, self.every))

    def num_tokens(self, n_in: int) -> int:
        """Cross-attention fusion puts no image tokens into the LM's sequence."""
        return 0

    def num_media_tokens(self, n_in: int) -> int:
        return self.resampler.num_latents if self.resampler is not None else n_in

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Media the blocks attend to: [B, N, Din] -> [B, M, Din] (resampled if num_latents > 0)."""
        check_features(features, self.in_dim, "xattn connector")
        check_mask(mask, features, "xattn connector")
        features = self.pos(features)
        return self.resampler(features, mask) if self.resampler is not None else features

    def set_media(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Media for the next LM forwards; mask [B, N] marks real tokens (a sample with none gets no media)."""
        self._media = self(features, mask)  # [B, M, Din]
        if self.resampler is None or mask is None:
            self._media_mask = mask
        else:
            # Latents always exist; only samples without any real token must stay media-free.
            self._media_mask = mask.bool().any(dim=1, keepdim=True).expand(-1, self._media.shape[1])

    def clear_media(self) -> None:
        self._media, self._media_mask = None, None

    def install(self, decoder_layers: nn.ModuleList) -> XAttnConnector:
        """Run a gated block on the hidden states entering layers 0, every, 2*every, ... of `decoder_layers`."""
        if self._hooks:
            raise RuntimeError("xattn connector is already installed; call uninstall() first")
        if self.num_layers is None:
            self._make_blocks(len(decoder_layers))
        elif self.num_layers != len(decoder_layers):
            raise ConfigError(
                f"xattn connector was built for num_layers={self.num_layers} but the LM has "
                f"{len(decoder_layers)} decoder layers; set num_layers to match"
            )
        for block, index in zip(self.blocks, range(0, len(decoder_layers), self.every)):
            hook = decoder_layers[index].register_forward_pre_hook(self._make_hook(block), with_kwargs=True)
            self._hooks.append(hook)
        return self

    def uninstall(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def _make_hook(self, block: GatedCrossAttentionBlock):
        def pre_hook(module: nn.Module, args: tuple, kwargs: dict):
            if self._media is None:
                return None  # text only: the layer runs untouched
            from_kwargs = not args
            hidden = kwargs["hidden_states"] if from_kwargs else args[0]  # [B', T, D]
            media, mask = self._expand_media(hidden.shape[0])
            # The blocks may stay in float32 under a bf16/fp16 LM; widening and narrowing back is exact, so the
            # zero-gate identity holds in any precision.
            dtype = block.attn_gate.dtype
            hidden = block(hidden.to(dtype), media.to(dtype), mask).to(hidden.dtype)
            if from_kwargs:
                return args, {**kwargs, "hidden_states": hidden}
            return (hidden, *args[1:]), kwargs

        return pre_hook

    def _expand_media(self, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """generate() with beams or num_return_sequences repeats each sample; repeat its media the same way."""
        media, mask = self._media, self._media_mask
        if media.shape[0] == batch:
            return media, mask
        if batch % media.shape[0] != 0:
            raise ValueError(
                f"xattn media were set for batch {media.shape[0]} but the LM runs batch {batch}; "
                f"call set_media with one entry per sequence"
            )
        reps = batch // media.shape[0]
        return media.repeat_interleave(reps, 0), None if mask is None else mask.repeat_interleave(reps, 0)
