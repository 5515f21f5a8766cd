"""Tests for `pixel-shuffle`, `qformer` and `perceiver`: token counts, gradients, masks, and parity with the
transformers reference blocks (Idefics3Connector, Blip2QFormerModel, IdeficsPerceiverResampler) after a weight port."""

import pytest
import torch

from modalign.connectors import CONNECTORS
from modalign.connectors.hf_port import perceiver_from_idefics, qformer_from_blip2
from modalign.connectors.pixel_shuffle import pixel_shuffle
from modalign.registry import build

TINY = {
    "pixel-shuffle": dict(scale=2),
    "qformer": dict(num_queries=5, heads=2, num_layers=2),
    "perceiver": dict(num_latents=6, heads=2, depth=2),
}


@pytest.mark.parametrize("name", sorted(TINY))
def test_shapes_tokens_and_gradients(name):
    torch.manual_seed(0)
    conn = build(CONNECTORS, "connector", name, in_dim=8, out_dim=12, **TINY[name])
    assert conn.fusion == "prefix"
    x = torch.randn(3, 16, 8, requires_grad=True)
    y = conn(x)
    assert y.shape == (3, conn.num_tokens(16), 12)
    assert conn.num_tokens(16) == {"pixel-shuffle": 4, "qformer": 5, "perceiver": 6}[name]
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0
    no_grad = [n for n, p in conn.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert no_grad == []


def test_pixel_shuffle_merges_neighbourhoods_in_row_major_order():
    # A 4x4 grid whose single channel is its own index: token (0, 0) of the 2x2 output must hold indices of the
    # top-left block in (row, column) order, token (0, 1) the block to its right.
    grid = torch.arange(16.0).reshape(1, 16, 1)
    out = pixel_shuffle(grid, 2)
    assert out.shape == (1, 4, 4)
    assert out[0, 0].tolist() == [0, 1, 4, 5]
    assert out[0, 1].tolist() == [2, 3, 6, 7]
    assert out[0, 2].tolist() == [8, 9, 12, 13]


def test_pixel_shuffle_errors_and_cls_skip():
    conn = CONNECTORS["pixel-shuffle"](in_dim=4, out_dim=6, scale=2)
    with pytest.raises(ValueError, match="skip_tokens=1"):
        conn(torch.randn(1, 17, 4))
    with pytest.raises(ValueError, match="square"):
        conn.num_tokens(12)
    with pytest.raises(ValueError, match="multiple of scale=2"):
        conn(torch.randn(1, 9, 4))
    skipping = CONNECTORS["pixel-shuffle"](in_dim=4, out_dim=6, scale=2, skip_tokens=1, projector="mlp")
    assert skipping(torch.randn(2, 17, 4)).shape == (2, skipping.num_tokens(17), 6) == (2, 4, 6)


def test_pixel_shuffle_matches_idefics3_connector():
    from transformers import Idefics3Config
    from transformers.models.idefics3.modeling_idefics3 import Idefics3Connector

    torch.manual_seed(0)
    cfg = Idefics3Config(
        vision_config=dict(hidden_size=8), text_config=dict(hidden_size=12, num_attention_heads=2), scale_factor=2
    )
    ref = Idefics3Connector(cfg).eval()
    ours = CONNECTORS["pixel-shuffle"](in_dim=8, out_dim=12, scale=2).eval()
    ours.proj.load_state_dict(ref.modality_projection.proj.state_dict())
    x = torch.randn(2, 36, 8)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_qformer_matches_blip2_qformer():
    from transformers import Blip2QFormerConfig
    from transformers.models.blip_2.modeling_blip_2 import Blip2QFormerModel

    torch.manual_seed(0)
    # cross-attention every 2nd layer as in BLIP-2, so layers with and without it are both compared.
    cfg = Blip2QFormerConfig(
        hidden_size=16,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=40,
        encoder_hidden_size=12,
        cross_attention_frequency=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    ref = Blip2QFormerModel(cfg).eval()
    with torch.no_grad():  # post_init leaves LayerNorms at identity; perturb them so their mapping is tested
        for name, p in ref.named_parameters():
            if "LayerNorm" in name or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    ours = CONNECTORS["qformer"](
        in_dim=12,
        out_dim=20,
        num_queries=7,
        hidden_dim=16,
        num_layers=3,
        heads=4,
        intermediate_dim=40,
        cross_attention_every=2,
        feature_norm=False,
    ).eval()
    queries = torch.randn(1, 7, 16)
    qformer_from_blip2(ours, ref.state_dict(), queries)
    feats = torch.randn(2, 10, 12)
    expected = ref(query_embeds=queries.expand(2, -1, -1), encoder_hidden_states=feats).last_hidden_state
    torch.testing.assert_close(ours.encode_queries(feats), expected, atol=1e-5, rtol=1e-5)
    # A padding mask over image tokens matches the reference's encoder_attention_mask.
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0
    expected = ref(
        query_embeds=queries.expand(2, -1, -1), encoder_hidden_states=feats, encoder_attention_mask=mask
    ).last_hidden_state
    torch.testing.assert_close(ours.encode_queries(feats, mask), expected, atol=1e-5, rtol=1e-5)
    # ...and masked tokens really do not matter.
    changed = feats.clone()
    changed[1, 6:] += 5.0
    torch.testing.assert_close(ours.encode_queries(changed, mask), ours.encode_queries(feats, mask))


@pytest.mark.parametrize("qk_norm", [False, True])
def test_perceiver_matches_idefics_resampler(qk_norm):
    from transformers import IdeficsConfig
    from transformers.models.idefics.perceiver import IdeficsPerceiverResampler

    torch.manual_seed(0)
    cfg = IdeficsConfig(vision_config=dict(embed_dim=16), perceiver_config=dict(qk_layer_norms_perceiver=qk_norm))
    ref = IdeficsPerceiverResampler(cfg, embed_dim=16, depth=2, n_heads=2, head_dim=6, n_latents=5).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    ours = CONNECTORS["perceiver"](
        in_dim=16,
        out_dim=20,
        num_latents=5,
        depth=2,
        heads=2,
        head_dim=6,
        act="relu",
        qk_norm="layernorm" if qk_norm else None,
    ).eval()
    perceiver_from_idefics(ours, ref.state_dict())
    feats = torch.randn(3, 9, 16)
    torch.testing.assert_close(ours.resample(feats), ref(feats), atol=1e-5, rtol=1e-5)
    assert ours(feats).shape == (3, 5, 20)


def test_perceiver_time_embeddings_and_mask():
    torch.manual_seed(0)
    conn = CONNECTORS["perceiver"](in_dim=8, out_dim=4, num_latents=3, heads=2, max_frames=2, max_positions=9)
    frames = torch.randn(2, 2, 9, 8)  # [B, T, N, D]
    assert conn(frames).shape == (2, 3, 4)
    # Swapping the two frames changes the output only because of the time embeddings.
    swapped = frames.flip(1)
    assert not torch.allclose(conn(frames), conn(swapped))
    with torch.no_grad():
        conn.time_embed.zero_()
    torch.testing.assert_close(conn(frames), conn(swapped), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="max_frames=2"):
        conn(torch.randn(1, 3, 9, 8))
    mask = torch.ones(2, 2, 9, dtype=torch.bool)
    mask[:, 1] = False  # second frame is padding
    changed = frames.clone()
    changed[:, 1] += 3.0
    torch.testing.assert_close(conn(frames, mask), conn(changed, mask))


@pytest.mark.parametrize("name,extra", [("qformer", {"num_queries": 4, "heads": 2}), ("xattn", {"heads": 2})])
def test_learned_positions_on_attending_connectors(name, extra):
    torch.manual_seed(0)
    plain = CONNECTORS[name](in_dim=8, out_dim=8, **extra)
    with_pos = CONNECTORS[name](in_dim=8, out_dim=8, positions=9, **extra)
    with_pos.load_state_dict(plain.state_dict(), strict=False)
    x = torch.randn(2, 9, 8)
    assert torch.equal(with_pos(x), plain(x))  # zero at initialisation
    with_pos(x).square().sum().backward()
    assert with_pos.pos.table.grad.abs().sum() > 0
    with torch.no_grad():
        with_pos.pos.table.normal_()
    assert not torch.allclose(with_pos(x), plain(x))
    with pytest.raises(ValueError, match="positions=9"):
        with_pos(torch.randn(2, 4, 8))
