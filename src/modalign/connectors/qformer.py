"""`qformer` connector: BLIP-2's Querying Transformer, K learned queries that read the image features.

Each layer is BERT-style post-norm: self-attention among the queries, cross-attention from the queries to the image
features (every `cross_attention_every`-th layer; BLIP-2 uses 2, our default 1 suits shallow stacks), then a GELU
FFN. Layer for layer it computes what transformers' `Blip2QFormerModel` computes on `query_embeds` alone
(models/blip_2/modeling_blip_2.py); `hf_port.qformer_from_blip2` maps its weights. The LM sees a linear projection
of the K query outputs (BLIP-2's `language_projection`), so the LM gets K tokens whatever N is.

BLIP-2 stage 1 (representation learning) reads the query outputs *before* the projection, from
`encode_queries(features) -> [B, K, H]`:
- ITC: project every query output to the shared embedding space (Linear H -> E, L2-normalise), compare each with the
  text [CLS] embedding and keep the best query per pair: sim(i, t) = max_k <q_ik, t>.
- ITM: BLIP-2 feeds every query output, after queries and text tokens have attended to each other, to a two-class
  Linear(H, 2) and averages the logits over the K queries; negatives are mined from the ITC similarities. This
  module has no text path, so a model that wants ITM adds the query-text interaction itself, e.g. a `QFormerLayer`
  whose cross-attention reads the text encoder's tokens (`QFormerLayer(H, text_dim, ...)`), then that head.
"""

from __future__ import annotations

import torch
from torch import nn

from modalign.connectors.attention import Attention, check_mask, split_heads
from modalign.connectors.projectors import TokenPositions, check_features, make_activation
from modalign.registry import ConfigError


class QFormerLayer(nn.Module):
    """Self-attention, optional cross-attention to features, FFN; each sub-block `norm(x + f(x))`."""

    def __init__(
        self, hidden: int, in_dim: int, heads: int, intermediate: int, cross: bool, act: str, eps: float, dropout: float
    ):
        super().__init__()
        head_dim = split_heads(heads, hidden, None, "qformer")
        self.self_attn = Attention(hidden, hidden, heads, head_dim, bias=True)
        self.self_norm = nn.LayerNorm(hidden, eps=eps)
        self.cross_attn = Attention(hidden, in_dim, heads, head_dim, bias=True) if cross else None
        self.cross_norm = nn.LayerNorm(hidden, eps=eps) if cross else None
        self.fc1 = nn.Linear(hidden, intermediate)
        self.act = make_activation(act)
        self.fc2 = nn.Linear(intermediate, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.self_norm(x + self.dropout(self.self_attn(x, x)))  # [B, K, H]
        if self.cross_attn is not None:
            x = self.cross_norm(x + self.dropout(self.cross_attn(x, features, mask)))  # [B, K, H]
        return self.ffn_norm(x + self.dropout(self.fc2(self.act(self.fc1(x)))))  # [B, K, H]


class QFormer(nn.Module):
    """[B, N, Din] -> [B, K, Dout] through K learned queries (BLIP-2)."""

    fusion = "prefix"

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        num_queries: int = 32,
        hidden_dim: int | None = None,
        num_layers: int = 2,
        heads: int = 8,
        intermediate_dim: int | None = None,
        cross_attention_every: int = 1,
        act: str = "gelu",
        feature_norm: bool = True,
        layer_norm_eps: float = 1e-12,
        dropout: float = 0.0,
        positions: int = 0,
    ):
        super().__init__()
        if num_queries < 1 or num_layers < 1 or cross_attention_every < 1:
            raise ConfigError("qformer needs num_queries >= 1, num_layers >= 1 and cross_attention_every >= 1")
        self.in_dim, self.out_dim, self.num_queries = in_dim, out_dim, num_queries
        hidden = hidden_dim or in_dim
        self.hidden_dim = hidden
        # BLIP-2 normalises the frozen ViT's tokens before the Q-Former reads them (its `ln_vision`).
        self.feature_norm = nn.LayerNorm(in_dim) if feature_norm else nn.Identity()
        self.pos = TokenPositions(positions, in_dim)  # learned places for CNN cells (see projectors.py)
        self.query_tokens = nn.Parameter(torch.randn(1, num_queries, hidden) * 0.02)  # [1, K, H]
        self.input_norm = nn.LayerNorm(hidden, eps=layer_norm_eps)
        self.layers = nn.ModuleList(
            QFormerLayer(
                hidden,
                in_dim,
                heads,
                intermediate_dim or 4 * hidden,
                cross=(i % cross_attention_every == 0),
                act=act,
                eps=layer_norm_eps,
                dropout=dropout,
            )
            for i in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, out_dim)

    def num_tokens(self, n_in: int) -> int:
        return self.num_queries

    def encode_queries(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Query outputs before the LM projection, [B, K, H]: what BLIP-2's stage-1 ITC/ITM heads read."""
        check_features(features, self.in_dim, "qformer connector")
        check_mask(mask, features, "qformer connector")
        features = self.feature_norm(self.pos(features))  # [B, N, Din]
        x = self.dropout(self.input_norm(self.query_tokens.expand(features.shape[0], -1, -1)))  # [B, K, H]
        for layer in self.layers:
            x = layer(x, features, mask)
        return x

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.proj(self.encode_queries(features, mask))  # [B, K, Dout]
