"""explain: rollout against hand-computed products, connector mappings, gradient maps against finite differences,
peaks/overlays, the pointing-game metric, and the `modalign explain` command on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.cli import main
from modalign.config import ModelConfig
from modalign.connectors import CONNECTORS
from modalign.connectors.attention import Attention
from modalign.connectors.pixel_shuffle import pixel_shuffle
from modalign.data import DATASETS
from modalign.encoders.preprocess import ImageProcessing
from modalign.explain import attention_rollout, explain, hit_rate, peak_point, pointing_items, resampler_rollout
from modalign.explain.connector_map import attention_weights, connector_patch_matrix, pixel_shuffle_matrix
from modalign.explain.overlay import overlay, view_box
from modalign.explain.targets import resolve_spans, word_spans
from modalign.explain.vlm_attribution import scored_tokens
from modalign.models import build_model
from modalign.registry import ConfigError

TINY_DUAL = {
    "kind": "dual",
    "embed_dim": 8,
    "loss": "siglip",
    "vision": {"name": "vit", "image_size": 16, "patch_size": 4, "hidden_size": 16, "num_layers": 2, "num_heads": 2},
    "text": {"name": "transformer", "hidden_size": 16, "num_layers": 1, "num_heads": 2, "max_length": 16},
}


def vlm(connector="mlp", params=None):
    torch.manual_seed(0)
    return build_model(tiny_cfg(connector, params), text_corpus=CORPUS)


def dual():
    torch.manual_seed(0)
    return build_model(ModelConfig.model_validate(TINY_DUAL))


# -- rollout ---------------------------------------------------------------------------------------------------
def test_rollout_equals_hand_computed_product():
    a1 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    a2 = torch.tensor([[1.0, 0.0], [0.2, 0.8]])
    # two heads whose mean is a1 (resp. a2): head averaging comes first
    l1 = torch.stack([a1 + torch.tensor([[0.0, 0.0], [0.1, -0.1]]), a1 - torch.tensor([[0.0, 0.0], [0.1, -0.1]])])
    l2 = torch.stack([a2, a2])
    r = attention_rollout([l1[None], l2[None]])[0]
    # Â1 = (a1 + I) / 2 = [[1, 0], [.25, .75]], Â2 = [[1, 0], [.1, .9]]; R = Â2 Â1
    assert torch.allclose(r, torch.tensor([[1.0, 0.0], [0.325, 0.675]]), atol=1e-6)
    assert torch.allclose(attention_rollout([a1[None]], add_identity=False)[0], a1)
    with pytest.raises(ValueError, match="at least one"):
        attention_rollout([])


def test_resampler_rollout_hand_computed():
    cross1 = {"to_patches": torch.tensor([[[0.3, 0.7]]])}
    self_ = {"to_queries": torch.tensor([[[1.0]]])}
    cross2 = {"to_patches": torch.tensor([[[1.0, 0.0]]])}
    # step 1: [.3, .7 | 1 + 1] / 2 -> R = [.15, .35]; self-attention of one query keeps R; step 3: [.5, 0] + .5 R
    r = resampler_rollout([cross1, self_, cross2], n_patches=2)
    assert torch.allclose(r, torch.tensor([[[0.575, 0.175]]]), atol=1e-6)
    with pytest.raises(ValueError, match="expected 3"):
        resampler_rollout([cross1], n_patches=3)


# -- connector mappings -----------------------------------------------------------------------------------------
def test_attention_weights_reproduce_the_module_output():
    torch.manual_seed(0)
    attn = Attention(8, 6, heads=2, head_dim=4, bias=True, qk_norm="layernorm")
    x, ctx = torch.randn(2, 3, 8), torch.randn(2, 5, 6)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    w = attention_weights(attn, x, ctx, mask)  # [2, 2, 3, 5]
    v = attn.v_proj(ctx).view(2, 5, 2, 4).transpose(1, 2)
    out = attn.o_proj((w @ v).transpose(1, 2).reshape(2, 3, 8))
    assert torch.allclose(out, attn(x, ctx, mask), atol=1e-5)
    assert torch.all(w[0, ..., 3:] == 0) and torch.allclose(w.sum(-1), torch.ones(2, 2, 3))


@pytest.mark.parametrize("scale,skip", [(2, 0), (2, 1), (3, 0)])
def test_pixel_shuffle_matrix_matches_the_connector_merge(scale, skip):
    side = 6
    n = skip + side * side
    feats = torch.arange(n, dtype=torch.float32).reshape(1, n, 1)  # channel = token index
    merged = pixel_shuffle(feats[:, skip:], scale)[0]  # [M, s*s] token indices
    c = pixel_shuffle_matrix(n, scale, skip)
    for m in range(merged.shape[0]):
        expect = torch.zeros(n)
        expect[merged[m].long()] = 1.0 / scale**2
        assert torch.equal(c[m], expect)


def test_token_wise_connectors_are_identity_and_resamplers_hand_checked():
    feats = torch.randn(2, 4, 6)
    assert torch.equal(connector_patch_matrix(CONNECTORS["mlp"](in_dim=6, out_dim=5), feats)[1], torch.eye(4))
    # zero key projections -> uniform attention; hand-computed rollouts:
    perc = CONNECTORS["perceiver"](in_dim=6, out_dim=5, num_latents=3, depth=1, heads=2)
    qf = CONNECTORS["qformer"](in_dim=6, out_dim=5, num_queries=3, num_layers=1, heads=2, hidden_dim=8)
    for attn in (perc.layers[0].attn, qf.layers[0].self_attn, qf.layers[0].cross_attn):
        torch.nn.init.zeros_(attn.k_proj.weight)
        if attn.k_proj.bias is not None:
            torch.nn.init.zeros_(attn.k_proj.bias)
    # perceiver: each latent attends 1/7 to each of 4 patches + 3 latents; with the residual the row sums to 2
    assert torch.allclose(connector_patch_matrix(perc, feats), torch.full((2, 3, 4), 1 / 14), atol=1e-6)
    # qformer: self-attention among queries (no patches yet), then cross-attention 1/4 per patch, halved
    assert torch.allclose(connector_patch_matrix(qf, feats), torch.full((2, 3, 4), 1 / 8), atol=1e-6)
    with pytest.raises(ConfigError, match="supported"):
        connector_patch_matrix(torch.nn.Identity(), feats)


# -- VLM and DualEncoder maps --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "connector,params",
    [("mlp", {}), ("qformer", {"num_queries": 3, "heads": 2}), ("perceiver", {"num_latents": 3, "heads": 2})],
)
def test_vlm_maps_have_the_patch_grid_shape(connector, params):
    model, im = vlm(connector, params), images(1)[0]
    for method in ("rollout", "gradient"):
        attrs = explain(model, im, "a red circle", method=method)
        assert [a.label for a in attrs] == ["a", "red", "circle"]
        assert all(a.map.shape == (2, 2) and np.isfinite(a.map).all() for a in attrs)
    rolled = explain(model, im, "a red circle", method="rollout", spans="text")[0].map
    assert (rolled >= 0).all() and 0 < rolled.sum() <= 1 + 1e-5  # a share of the rolled-out attention


def test_pixel_shuffle_rollout_spreads_one_token_evenly():
    model = vlm("pixel-shuffle", {"scale": 2})  # 2x2 grid -> 1 LM token
    m = explain(model, images(1)[0], "a red circle", method="rollout", spans=["red"])[0].map
    assert np.allclose(m, m[0, 0]) and m[0, 0] > 0


def _directional_fd(fn, eps=1e-2):
    return (fn(1 + eps) - fn(1 - eps)) / (2 * eps)


def test_vlm_gradient_map_sums_to_the_directional_derivative_of_the_score():
    model, im, text = vlm("linear"), images(1, seed=4)[0], "a red circle"
    total = explain(model, im, text, method="gradient", spans="text")[0].map.sum()  # sum_n grad_n . x_n
    forward = model.vision.forward

    def score(scale):  # log p(text | image) with the vision tokens scaled by `scale`
        model.vision.forward = lambda px: type(out := forward(px))(tokens=out.tokens * scale, pooled=out.pooled)
        try:
            return float(model.score([im], [text], normalize=False)[0])
        finally:
            model.vision.forward = forward

    assert total == pytest.approx(_directional_fd(score), rel=0.03, abs=1e-4)


def test_dual_pixel_gradient_map_sums_to_the_directional_derivative_of_the_cosine():
    model, im = dual(), images(1, seed=5)[0]
    pix_map = explain(model, im, "a red circle", spans="text", on="pixels")[0].map  # patch means of grad*x
    total = pix_map.sum() * (16 // 4) ** 2
    pre = model.vision.preprocess
    text_emb = model.embed_texts(["a red circle"])

    def cos(scale):
        model.vision.preprocess = lambda ims: pre(ims) * scale
        try:
            return float(model.embed_images([im]) @ text_emb.T)
        finally:
            model.vision.preprocess = pre

    assert total == pytest.approx(_directional_fd(cos), rel=0.03, abs=1e-5)
    layer = explain(model, im, "a red circle", spans=["red", "circle"])
    assert [a.map.shape for a in layer] == [(4, 4), (4, 4)] and not np.allclose(layer[0].map, 0)


def test_wrong_method_or_fusion_says_what_to_change():
    with pytest.raises(ConfigError, match="gradient"):
        explain(dual(), images(1)[0], "a red circle", method="rollout")
    xattn = vlm("xattn", {"heads": 2})
    with pytest.raises(ConfigError, match="gradient"):
        explain(xattn, images(1)[0], "a red circle", method="rollout")
    for p in xattn.connector.parameters():  # open the gates so the image reaches the text
        if p.dim() == 1 and p.numel() == 1:
            torch.nn.init.constant_(p, 1.0)
    assert np.abs(explain(xattn, images(1)[0], "a red circle", spans="text")[0].map).sum() > 0
    with pytest.raises(ValueError, match="does not occur"):
        explain(vlm(), images(1)[0], "a red circle", spans=["blue"])


# -- spans, peaks, overlays, hit rate ----------------------------------------------------------------------------
def test_spans_and_the_tokens_they_cover():
    assert word_spans("a red circle.") == [(0, 1), (2, 5), (6, 12)]
    assert resolve_spans("a red circle", ["RED circle"]) == [(2, 12)]
    with pytest.raises(ValueError, match="outside"):
        resolve_spans("abc", [(1, 9)])
    model = vlm()
    ids, (red, circle, whole) = scored_tokens(model, "a red circle", [(2, 5), (6, 12), (0, 12)])
    decode = lambda pos: model.tokenizer.decode(ids[0, pos].tolist())
    assert decode(red) == " red" and decode(circle) == " circle" and decode(whole) == "a red circle"
    assert whole[0] == 1 + model.prompts.tokens_per_image  # after <s> and the image tokens


def test_peak_point_and_view_box():
    m = np.array([[0.0, 0.1], [0.9, 0.2]])
    assert peak_point(m, (0, 0, 16, 16)) == (4.0, 12.0)
    tower = type("T", (), {"processing": ImageProcessing(height=10, width=10, shortest_edge=10)})()
    # 40x20 image: short side 20 -> 10 (scale 0.5), centre crop 10x10 = 20x20 original pixels at x 10..30
    assert view_box(tower, (40, 20)) == (10.0, 0.0, 30.0, 20.0)
    assert peak_point(m, view_box(tower, (40, 20))) == (15.0, 15.0)


def test_overlay_is_enlarged_and_coloured_where_the_map_is_hot():
    im = Image.new("RGB", (16, 16), (128, 128, 128))
    out = np.asarray(overlay(im, np.array([[0.0, 0.0], [0.0, 1.0]]), alpha=0.6))
    assert out.shape == (256, 256, 3)
    hot, cold = out[250, 250].astype(int), out[5, 5].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # jet: red where hot, blue where cold


def test_hit_rate_hand_computed():
    r = hit_rate([(5, 5), (20, 20), (10, 5)], [[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [(40, 40)] * 3)
    assert r["hits"] == [True, False, False]  # boxes are end-exclusive: x = 10 is outside
    assert r["hit_rate"] == pytest.approx(1 / 3) and r["chance"] == pytest.approx(100 / 1600) and r["n"] == 3
    with pytest.raises(ValueError, match="one box"):
        hit_rate([(1, 1)], [], [])


def test_pointing_items_from_grounding_and_captions():
    g = pointing_items(DATASETS["shapes"](task="grounding", n=3, image_size=32, max_objects=2))
    assert len(g) == 3 and g[0]["targets"][0][0] == g[0]["text"]
    c = pointing_items(DATASETS["shapes"](task="caption", n=4, image_size=32, max_objects=2))
    for item in c:
        for phrase, box in item["targets"]:
            assert phrase in item["text"] and len(box) == 4


# -- the command -------------------------------------------------------------------------------------------------
def test_cli_writes_one_overlay_per_word_and_prints_peaks(tmp_path, capsys):
    vlm().save_pretrained(tmp_path / "vlm")
    images(1)[0].save(tmp_path / "im.png")
    code = main(
        [
            "explain",
            str(tmp_path / "vlm"),
            "--image",
            str(tmp_path / "im.png"),
            "--text",
            "a red circle",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == ["00_a.png", "01_red.png", "02_circle.png"]
    peaks = json.loads((tmp_path / "out" / "peaks.json").read_text())
    assert peaks["method"] == "rollout" and [m["label"] for m in peaks["maps"]] == ["a", "red", "circle"]
    assert "peak cell" in capsys.readouterr().out
    dual().save_pretrained(tmp_path / "dual")
    code = main(
        [
            "explain",
            str(tmp_path / "dual"),
            "--image",
            str(tmp_path / "im.png"),
            "--text",
            "a red circle",
            "--whole",
            "--out",
            str(tmp_path / "out2"),
        ]
    )
    assert code == 0 and len(list((tmp_path / "out2").glob("*.png"))) == 1
    assert (
        main(
            [
                "explain",
                str(tmp_path / "dual"),
                "--image",
                str(tmp_path / "im.png"),
                "--text",
                "x",
                "--method",
                "rollout",
            ]
        )
        == 2
    )


def test_region_phrases_are_the_longest_run_of_a_regions_words_in_the_caption():
    from modalign.explain.hits import region_phrase, region_targets

    text = "a large red star and a large orange star on a grey background"
    assert region_phrase("large red star top", text) == "large red star"
    assert region_phrase("large orange star top", text) == "large orange star"
    assert region_phrase("small blue square", text) is None  # no two of its words stand in the text
    regions = [{"box": [0, 0, 4, 4], "text": "red star"}, {"box": [4, 4, 8, 8], "text": "red star left"}]
    assert region_targets("a red star", regions) == []  # one phrase naming two regions points at neither
