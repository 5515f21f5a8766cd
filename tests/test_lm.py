"""The VLM's language model: the BPE tokenizer and chat template of tiny-llama, and local `hf` checkpoints."""

import json
import shutil

import pytest
import torch
from test_vlm_tiny_parts import images
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from modalign.config import ModelConfig
from modalign.models.chat_template import SPECIAL_TOKENS, to_messages
from modalign.models.lm import build_lm, train_tokenizer
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError

CORPUS = ["a red circle above a blue square", "Is there a circle? yes", "two green triangles."] * 5


def test_tokenizer_round_trips_text_and_keeps_special_tokens_whole(tmp_path):
    tok = train_tokenizer(CORPUS, 300)
    assert tok.convert_ids_to_tokens(list(range(len(SPECIAL_TOKENS)))) == list(SPECIAL_TOKENS)
    text = "Is there a zebra?  Unseen words, punctuation & spaces survive."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    ids = tok("<image><image>\nQ", add_special_tokens=False)["input_ids"]
    assert ids[:2] == [tok.convert_tokens_to_ids("<image>")] * 2
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == tok(text)["input_ids"] and again.chat_template == tok.chat_template
    with pytest.raises(ConfigError, match="too small"):
        train_tokenizer(CORPUS, 100)


def test_chat_template_renders_llava_conversations():
    tok = train_tokenizer(CORPUS, 300)
    conv = [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "<image>\nColor?"},
        {"from": "gpt", "value": "red"},
    ]
    text = tok.apply_chat_template(to_messages(conv), tokenize=False)
    assert text == "<s><|system|>Be brief.<|end|><|user|><image>\nColor?<|end|><|assistant|>red<|end|>"
    prompt = tok.apply_chat_template(to_messages(conv[:2]), tokenize=False, add_generation_prompt=True)
    assert text.startswith(prompt) and prompt.endswith("<|assistant|>")
    with pytest.raises(ValueError, match="LLaVA format"):
        to_messages([{"speaker": "bob", "value": "hi"}])


def test_tiny_llama_follows_the_config():
    model, tok = build_lm(
        "tiny-llama",
        {"hidden_size": 32, "num_layers": 3, "num_heads": 4, "vocab_size": 300, "max_position_embeddings": 64},
        CORPUS,
    )
    c = model.config
    assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.vocab_size) == (32, 3, 4, len(tok))
    with pytest.raises(ConfigError, match="does not take"):
        build_lm("tiny-llama", {"hidden": 32}, CORPUS)
    with pytest.raises(ConfigError, match="divisible"):
        build_lm("tiny-llama", {"hidden_size": 30, "num_heads": 4}, CORPUS)


def _local_checkpoint(tmp_path):
    """A checkpoint whose tokenizer has neither <image> nor a pad token (like many base LMs)."""
    vocab = {
        "<unk>": 0,
        "<s>": 1,
        "</s>": 2,
        **{w: i + 3 for i, w in enumerate(["a", "red", "circle", "is", "there", "?"])},
    }
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    tok.save_pretrained(tmp_path)
    torch.manual_seed(0)
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).save_pretrained(tmp_path)
    return tmp_path


def test_hf_checkpoint_gets_image_and_pad_tokens_and_resized_embeddings(tmp_path):
    path = _local_checkpoint(tmp_path / "lm")
    model, tok = build_lm("hf", {"path": str(path)})
    assert "<image>" in tok.get_vocab() and tok.pad_token is not None
    assert model.get_input_embeddings().num_embeddings >= len(tok)
    assert tok.chat_template is not None
    with pytest.raises(ConfigError, match="not a Hugging Face checkpoint"):
        build_lm("hf", {"path": str(tmp_path / "nowhere")})


def test_vlm_on_a_local_hf_lm_names_it_in_a_save_or_stores_it_with_full(tmp_path):
    path = _local_checkpoint(tmp_path / "lm")
    cfg = ModelConfig.model_validate(
        {
            "kind": "vlm",
            "vision": {"name": "tiny-clip-test"},
            "connector": {"name": "linear"},
            "lm": {"name": "hf", "path": str(path)},
        }
    )
    model = VisionLanguageModel.from_config(cfg).eval()
    model.save_pretrained(tmp_path / "vlm")  # the frozen LM is named (path + sha256), not stored
    model.save_pretrained(tmp_path / "vlm-full", full=True)
    assert json.loads((tmp_path / "vlm" / "config.json").read_text())["references"]["lm"]["path"] == str(path)
    assert not json.loads((tmp_path / "vlm-full" / "config.json").read_text())["references"]
    im = images(1)
    again = VisionLanguageModel.load(tmp_path / "vlm")
    assert torch.allclose(model.score(im, ["a red circle"]), again.score(im, ["a red circle"]))
    shutil.rmtree(path)
    with pytest.raises(ConfigError, match="not a Hugging Face checkpoint directory"):
        VisionLanguageModel.load(tmp_path / "vlm")
    full = VisionLanguageModel.load(tmp_path / "vlm-full")  # self-contained
    assert torch.allclose(model.score(im, ["a red circle"]), full.score(im, ["a red circle"]))
