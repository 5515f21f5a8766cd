"""The causal language model of a VisionLanguageModel and its tokenizer, built through transformers.

Two sources, named by the recipe's `lm:` component:
- `tiny-llama`: a from-scratch `LlamaForCausalLM` from a `LlamaConfig`, with a byte-level BPE tokenizer trained by the
  `tokenizers` library on the recipe's own text (so every word of the world is a few tokens and nothing is unknown),
  wrapped as a `PreTrainedTokenizerFast` that carries modalign's chat template (models/chat_template.py).
- `hf`: any local causal-LM checkpoint directory (`AutoModelForCausalLM` + `AutoTokenizer`); `<image>` and a pad token
  are added when missing and the embeddings resized.

When a saved VLM is loaded, the tokenizer and the LM's HF config come from the save directory (`from_saved`), so the
original corpus or checkpoint path is not needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from ..registry import ConfigError
from .chat_template import (
    BOS_TOKEN,
    CHAT_TEMPLATE,
    EOS_TOKEN,
    IMAGE_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
)

LM_NAMES = ("tiny-llama", "hf")


def train_tokenizer(text_corpus: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `text_corpus`; special tokens come first (ids 0..len(SPECIAL_TOKENS)-1)."""
    min_size = 256 + len(SPECIAL_TOKENS)
    if vocab_size < min_size:
        raise ConfigError(f"lm.vocab_size={vocab_size} is too small for a byte-level BPE: use at least {min_size}")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = (t for t in text_corpus if isinstance(t, str) and t)
    backend.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)],
        padding_side="left",  # generation pads on the left; training collation builds its own padding
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _tiny_llama_config(vocab_size: int, params: dict) -> LlamaConfig:
    allowed = {
        "hidden_size",
        "num_layers",
        "num_heads",
        "num_kv_heads",
        "intermediate_size",
        "max_position_embeddings",
        "vocab_size",
        "rope_theta",
    }
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"lm 'tiny-llama' does not take {', '.join(unknown)}; its parameters are: {', '.join(sorted(allowed))}"
        )
    hidden = int(params.get("hidden_size", 128))
    heads = int(params.get("num_heads", 4))
    if hidden % heads:
        raise ConfigError(f"lm.hidden_size={hidden} must be divisible by lm.num_heads={heads}")
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=int(params.get("num_layers", 2)),
        num_attention_heads=heads,
        num_key_value_heads=int(params.get("num_kv_heads", heads)),
        intermediate_size=int(params.get("intermediate_size", 4 * hidden)),
        max_position_embeddings=int(params.get("max_position_embeddings", 512)),
        rope_theta=float(params.get("rope_theta", 10000.0)),
        tie_word_embeddings=False,
    )


def _ensure_special_tokens(model: PreTrainedModel, tok) -> None:
    """A local checkpoint may lack `<image>` or a pad token: add them and grow the embeddings to match."""
    if IMAGE_TOKEN not in tok.get_vocab():
        tok.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tok.pad_token is None:
        tok.add_special_tokens({"pad_token": PAD_TOKEN})
    if model.get_input_embeddings().num_embeddings < len(tok):
        model.resize_token_embeddings(len(tok))
    tok.padding_side = "left"
    if tok.chat_template is None:
        tok.chat_template = CHAT_TEMPLATE


def build_lm(name: str, params: dict, text_corpus: Iterable[str] | None = None):
    """A fresh (tiny-llama) or checkpoint (hf) causal LM and its tokenizer -> (model, tokenizer)."""
    if name == "tiny-llama":
        if text_corpus is None:
            raise ConfigError(
                "lm 'tiny-llama' trains its tokenizer on the recipe's text: pass text_corpus= "
                "(e.g. the training dataset's texts()) to VisionLanguageModel.from_config"
            )
        tok = train_tokenizer(text_corpus, int(params.get("vocab_size", 512)))
        model = LlamaForCausalLM(_tiny_llama_config(len(tok), params))
        return model, tok
    if name == "hf":
        if set(params) - {"path"} or "path" not in params:
            raise ConfigError("lm 'hf' takes exactly `path:` (a local causal-LM checkpoint directory)")
        path = Path(params["path"])
        if not (path / "config.json").exists():
            raise ConfigError(f"lm.path={path} is not a Hugging Face checkpoint directory (no config.json)")
        model = AutoModelForCausalLM.from_pretrained(str(path))
        tok = AutoTokenizer.from_pretrained(str(path))
        _ensure_special_tokens(model, tok)
        return model, tok
    raise ConfigError(f"unknown lm {name!r}; choose one of: {', '.join(LM_NAMES)}")


def from_saved(directory: str | Path):
    """The LM skeleton (random weights, the saved architecture) and tokenizer of a saved VLM directory."""
    directory = Path(directory)
    tok = AutoTokenizer.from_pretrained(str(directory))
    tok.padding_side = "left"
    config = AutoConfig.from_pretrained(str(directory / "lm"))
    model = AutoModelForCausalLM.from_config(config)
    return model, tok


def save_lm_files(model: PreTrainedModel, tok, directory: str | Path) -> None:
    """Tokenizer files at the top of the directory (as HF tools expect), the LM's HF config under `lm/`."""
    directory = Path(directory)
    tok.save_pretrained(str(directory))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.save_pretrained(str(directory / "lm"))
