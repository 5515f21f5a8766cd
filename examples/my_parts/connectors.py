"""A connector of your own: attention pooling of the tower's tokens into K tokens for the LM.

Any `nn.Module` with `forward(features [B, N, Din]) -> [B, M, Dout]`, `num_tokens(N) -> M` and `fusion = "prefix"`
plugs into `ma.VisionLanguageModel(connector=...)`. `get_config()` returns the constructor's arguments, so a saved
model can rebuild it.
"""

from __future__ import annotations

import torch
from torch import nn


class AttentionPool(nn.Module):
    fusion = "prefix"

    def __init__(self, in_dim: int, out_dim: int, num_queries: int = 4):
        super().__init__()
        self.in_dim, self.out_dim, self.num_queries = in_dim, out_dim, num_queries
        self.queries = nn.Parameter(torch.randn(num_queries, in_dim) * in_dim**-0.5)
        self.proj = nn.Linear(in_dim, out_dim)

    def get_config(self) -> dict:
        return {"in_dim": self.in_dim, "out_dim": self.out_dim, "num_queries": self.num_queries}

    def num_tokens(self, n_in: int) -> int:
        return self.num_queries

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.queries @ features.transpose(1, 2) / self.in_dim**0.5, dim=-1)  # [B, K, N]
        return self.proj(weights @ features)  # [B, K, Dout]
