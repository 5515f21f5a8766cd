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
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig
    from transformers.models.llava.modeling_llava import LlavaMultiModalProjector

    torch.manual_seed(0)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        text_config=LlamaConfig(
            hidden_size=24, intermediate_size=48, num_hidden_layers=1, num_attention_heads=2, vocab_size=50
        ),
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


def test_sincos_positions_match_a_hand_computed_grid():
    from modalign.connectors.projectors import sincos_2d

    t = sincos_2d(4, 8)  # a 2x2 grid, 8 channels: [sin(r w), cos(r w), sin(c w), cos(c w)] for w in (1, 1/100)
    w = torch.tensor([1.0, 0.01])
    for k, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        want = torch.cat([(r * w).sin(), (r * w).cos(), (c * w).sin(), (c * w).cos()])
        torch.testing.assert_close(t[k], want)
    with pytest.raises(ConfigError, match="square grid"):
        sincos_2d(6, 8)


@pytest.mark.parametrize("name", ["linear", "mlp"])
def test_input_norm_and_sincos_start(name):
    from modalign.connectors.projectors import sincos_2d

    torch.manual_seed(0)
    conn = CONNECTORS[name](in_dim=8, out_dim=10, positions=16, positions_init="sincos", input_norm=True)
    torch.testing.assert_close(conn.pos.table.detach(), sincos_2d(16, 8))  # starts from the places, and learns
    x = torch.randn(2, 16, 8)
    # normalised tokens: the scale of the tower's features no longer decides how much the place weighs
    torch.testing.assert_close(conn(60 * x + 3), conn(x), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(conn.pos(x), torch.nn.functional.layer_norm(x, (8,)) + sincos_2d(16, 8))
    conn(x).sum().backward()
    assert conn.pos.table.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="positions_init"):
        CONNECTORS[name](in_dim=8, out_dim=10, positions=16, positions_init="random")


def test_square_side_names_the_grid_or_none():
    from modalign.connectors.grid import square_side

    assert [square_side(n) for n in (1, 4, 64, 576)] == [1, 2, 8, 24]
    assert [square_side(n) for n in (0, -4, 2, 63, 65)] == [None] * 5
