"""Text towers: MiniLM mean pooling done by hand, padding invariance, the from-scratch BERT, a local HF encoder
reloaded by path against the original model, and clear errors."""

import pytest
import torch

from modalign.encoders import TEXT_ENCODERS
from modalign.encoders.text import masked_mean, minilm_path
from modalign.registry import ConfigError, build


@pytest.fixture(scope="module")
def minilm():
    return TEXT_ENCODERS["minilm"]().eval()


def test_masked_mean_hand_case():
    tokens = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # [1, 3, 2]
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(masked_mean(tokens, mask), torch.tensor([[2.0, 3.0]]))


def test_minilm_mean_pooling_by_hand(minilm):
    texts = ["a red square left of a blue circle", "two cats"]
    batch = minilm.tokenize(texts)
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][1].sum() < batch["attention_mask"][0].sum()  # padded to the batch max
    with torch.no_grad():
        out = minilm(**batch)
        hidden = minilm.model(**batch).last_hidden_state  # [2, T, 384]
    assert minilm.hidden_size == 384 and out.tokens.shape == hidden.shape
    n = int(batch["attention_mask"][1].sum())
    assert torch.allclose(out.pooled[1], hidden[1, :n].mean(0), atol=1e-6)  # sentence-transformers' mean pooling
    assert torch.equal(out.mask, batch["attention_mask"])
    assert not torch.allclose(out.pooled.norm(dim=-1), torch.ones(2))  # normalising is the head's job


def test_minilm_padding_invariance_and_semantics(minilm):
    texts = ["a cat sits on the mat", "a kitten is sitting on a rug", "the stock market fell sharply today"]
    with torch.no_grad():
        alone = minilm(**minilm.tokenize(texts[1:2])).pooled
        batched = minilm(**minilm.tokenize(texts)).pooled
    assert torch.allclose(alone[0], batched[1], atol=1e-5)
    e = torch.nn.functional.normalize(batched, dim=-1)
    # the pretrained weights are really loaded: paraphrases are closer than an unrelated sentence
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.3


def test_minilm_truncates_to_max_length():
    tower = TEXT_ENCODERS["minilm"](max_length=8)
    batch = tower.tokenize(["one two three four five six seven eight nine ten eleven"])
    assert batch["input_ids"].shape == (1, 8)
    assert tower.config_dict() == {"name": "minilm", "max_length": 8, "pool": "mean"}


def test_transformer_from_scratch_and_rebuild():
    torch.manual_seed(0)
    tower = build(
        TEXT_ENCODERS,
        "text encoder",
        "transformer",
        hidden_size=32,
        num_layers=2,
        num_heads=4,
        max_length=16,
        pool="cls",
    )
    assert tower.model.config.vocab_size == 30522 and tower.hidden_size == 32  # MiniLM's WordPiece vocabulary
    batch = tower.tokenize(["a small red square", "hi"])
    tower.eval()
    out = tower(**batch)
    assert out.tokens.shape == (2, batch["input_ids"].shape[1], 32)
    assert torch.equal(out.pooled, out.tokens[:, 0])
    cfg = tower.config_dict()
    again = build(TEXT_ENCODERS, "text encoder", cfg.pop("name"), **cfg)
    again.load_state_dict(tower.state_dict())
    assert torch.equal(again.eval()(**batch).pooled, out.pooled)
    with pytest.raises(ConfigError, match="divisible"):
        TEXT_ENCODERS["transformer"](hidden_size=30, num_heads=4)


def test_hf_text_dir_matches_original(tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    model = BertModel(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    ).eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    tower = build(TEXT_ENCODERS, "text encoder", "hf", path=str(tmp_path), max_length=64).eval()
    assert tower.model.pooler is None  # BERT's tanh pooler is dropped
    batch = tower.tokenize(["a blue circle", "a green triangle above a red square"])
    ref = model(**batch).last_hidden_state
    out = tower(**batch)
    assert torch.allclose(out.tokens, ref, atol=1e-6)
    assert torch.allclose(out.pooled, masked_mean(ref, batch["attention_mask"]), atol=1e-6)
    with pytest.raises(ConfigError, match="exceeds"):
        TEXT_ENCODERS["hf"](path=str(tmp_path), max_length=100)


def test_hf_text_errors(tmp_path, minilm):
    with pytest.raises(ConfigError, match="never downloads"):
        TEXT_ENCODERS["hf"](path=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="config.json"):
        TEXT_ENCODERS["hf"](path=str(tmp_path))
    with pytest.raises(TypeError, match="list of strings"):
        minilm.tokenize("just a string")
