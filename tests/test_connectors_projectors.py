"""Tests for the `linear` and `mlp` connectors: shapes, gradients, registry build, LLaVA projector parity."""

import pytest
import torch

from modalign.connectors import CONNECTORS
from modalign.registry import ConfigError, build


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_shapes_tokens_and_gradients(name):
    torch.manual_seed(0)
    conn = build(CONNECTORS, "connector", name, in_dim=12, out_dim=20)
    assert conn.fusion == "prefix"
    x = torch.randn(3, 7, 12, requires_grad=True)
    y = conn(x)
    assert y.shape == (3, conn.num_tokens(7), 20) == (3, 7, 20)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conn.parameters())


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_wrong_channels_say_what_to_change(name):
    conn = CONNECTORS[name](in_dim=12, out_dim=20)
    with pytest.raises(ValueError, match="in_dim=12"):
        conn(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match=r"\[B, N, 12\]"):
        conn(torch.randn(3, 12))


def test_unknown_activation_is_a_config_error():
    with pytest.raises(ConfigError, match="choose one of"):
        CONNECTORS["mlp"](in_dim=4, out_dim=4, act="swish2")


def test_mlp_matches_transformers_llava_projector():
    from transformers import LlamaConfig, LlavaConfig, CLIPVisionConfig
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    torch.manual_seed(0)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=32, patch_size=16),
        text_config=LlamaConfig(hidden_size=24, intermediate_size=48, num_hidden_layers=1,
                                num_attention_heads=2, vocab_size=50),
        projector_hidden_act="gelu",
    )
    ref = LlavaMultiModalProjector(cfg).eval()
    ours = CONNECTORS["mlp"](in_dim=16, out_dim=24).eval()
    # The names are identical, so the state dict loads strictly with no renaming.
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,extra", [("linear", {}), ("mlp", {}), ("pixel-shuffle", {"scale": 2})])
def test_learned_positions_start_at_zero_and_tell_tokens_apart(name, extra):
    torch.manual_seed(0)
    plain = CONNECTORS[name](in_dim=6, out_dim=10, **extra)
    with_pos = CONNECTORS[name](in_dim=6, out_dim=10, positions=16, **extra)
    with_pos.load_state_dict(plain.state_dict(), strict=False)  # same projection weights; the table stays zero
    x = torch.randn(2, 16, 6)
    assert torch.equal(with_pos(x), plain(x))  # at initialisation the positions change nothing
    same = torch.randn(6).expand(1, 16, 6)  # one feature vector at every cell
    with_pos(same).sum().backward()
    assert with_pos.pos.table.grad.abs().sum() > 0  # the table learns
    with torch.no_grad():
        with_pos.pos.table.normal_()
    out = with_pos(same)
    assert not torch.allclose(out[0, 0], out[0, 1])  # identical cells now differ by where they are
    with pytest.raises(ValueError, match="positions=16"):
        with_pos(torch.randn(2, 4, 6))
    with pytest.raises(ConfigError, match="positions"):
        CONNECTORS[name](in_dim=6, out_dim=10, positions=-1, **extra)
