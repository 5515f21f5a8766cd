"""BLIP-2 stage 1 (objective qformer): hard negatives by hand, masks, the text side and heads against transformers'
Blip2ForImageTextRetrieval, the losses through a tiny VisionLanguageModel, save/load, and a short training run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.connectors.qformer import QFormer
from modalign.models import build_model, load_model
from modalign.models.blip2_stage1 import (
    Blip2Stage1,
    attention_mask,
    caption_tokens,
    hard_negatives,
    itc_similarity,
    stage1_from_blip2,
)
from modalign.registry import ConfigError

QF = dict(num_queries=4, hidden_dim=16, num_layers=2, heads=2)


def test_hard_negatives_are_the_most_similar_non_matching_pairs():
    sim = torch.tensor([[0.9, 0.8, 0.1], [0.7, 0.95, 0.6], [0.2, 0.3, 0.5]])
    neg_text, neg_image = hard_negatives(sim)
    assert neg_text.tolist() == [1, 0, 1]  # row maxima off the diagonal
    assert neg_image.tolist() == [1, 0, 1]  # column maxima off the diagonal
    same = torch.zeros(3, 3, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True  # texts 0 and 1 are the same caption: never each other's negative
    neg_text, neg_image = hard_negatives(sim, same)
    assert neg_text.tolist() == [2, 2, 1] and neg_image.tolist() == [2, 2, 1]
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # LAVIS-style sampling never draws a matching pair
        t, i = hard_negatives(sim, same, sample=True, generator=g)
        assert t.tolist()[:2] == [2, 2] and i.tolist()[:2] == [2, 2] and t[2] != 2 and i[2] != 2
    with pytest.raises(ValueError, match="at least 2"):
        hard_negatives(torch.ones(1, 1))


def test_attention_masks():
    text = torch.tensor([[1, 1, 0]])  # two text tokens and a pad; K = 2 queries
    gen = attention_mask(2, text, "generate")[0, 0].int().tolist()
    assert gen == [
        [1, 1, 0, 0, 0],  # queries read queries only
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],  # text: every query, itself and earlier text
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0],
    ]  # never the pad
    match = attention_mask(2, text, "match")[0, 0].int()
    assert match.tolist() == [[1, 1, 1, 1, 0]] * 5
    assert attention_mask(2, text, "text")[0, 0].int().tolist() == [[1, 1, 0]] * 3


@pytest.fixture(scope="module")
def reference():
    from transformers import Blip2Config
    from transformers.models.blip_2.modeling_blip_2 import Blip2ForImageTextRetrieval

    torch.manual_seed(0)
    cfg = Blip2Config(
        vision_config=dict(
            hidden_size=12,
            intermediate_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        qformer_config=dict(
            hidden_size=16,
            num_hidden_layers=3,
            num_attention_heads=4,
            intermediate_size=40,
            cross_attention_frequency=2,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
            vocab_size=30,
            max_position_embeddings=12,
            use_qformer_text_input=True,
        ),
        num_query_tokens=5,
        image_text_hidden_size=8,
    )
    ref = Blip2ForImageTextRetrieval(cfg).eval()
    with torch.no_grad():  # post_init leaves norms at identity and biases at zero: perturb so the mapping is tested
        for name, p in ref.named_parameters():
            if "LayerNorm" in name or "layernorm" in name or name.endswith("bias") or name == "query_tokens":
                p.add_(torch.randn_like(p) * 0.1)
    qformer = QFormer(
        in_dim=12,
        out_dim=20,
        num_queries=5,
        hidden_dim=16,
        num_layers=3,
        heads=4,
        intermediate_dim=40,
        cross_attention_every=2,
        feature_norm=False,
    ).eval()
    stage1 = Blip2Stage1(qformer, vocab_size=30, max_text_len=12, cls_id=1, dec_id=2, embed_dim=8).eval()
    stage1_from_blip2(stage1, qformer, ref.state_dict())
    pixels = torch.randn(3, 3, 16, 16)
    ids = torch.tensor([[1, 5, 9, 4, 0], [1, 7, 7, 0, 0], [1, 3, 8, 6, 11]])  # [CLS] first, 0 = pad
    mask = (ids != 0).long()
    return ref, qformer, stage1, pixels, ids, mask


def test_itc_and_itm_match_blip2_image_text_retrieval(reference):
    ref, qformer, stage1, pixels, ids, mask = reference
    with torch.no_grad():
        feats = ref.vision_model(pixel_values=pixels).last_hidden_state  # [3, 5, 12]
        itc_ref = ref(pixel_values=pixels, input_ids=ids, attention_mask=mask).logits_per_image
        itm_ref = ref(
            pixel_values=pixels, input_ids=ids, attention_mask=mask, use_image_text_matching_head=True
        ).logits_per_image
        text = stage1.text_embeds(stage1.run(qformer, None, ids, mask, "text")[1])
        itc = stage1.similarity(stage1.image_embeds(qformer.encode_queries(feats)), text)
        q, _ = stage1.run(qformer, feats, ids, mask, "match")
        itm = stage1.itm_head(q).mean(dim=1)
    assert itc.shape == (3, 3) and itm.shape == (3, 2)
    torch.testing.assert_close(itc, itc_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(itm, itm_ref, atol=1e-5, rtol=1e-5)


def test_generate_pass_matches_the_reference_under_a_causal_mask(reference):
    ref, qformer, stage1, pixels, ids, mask = reference
    with torch.no_grad():
        feats = ref.vision_model(pixel_values=pixels).last_hidden_state
        q, t = stage1.run(qformer, feats, ids, mask, "generate")
        joint = ref.embeddings(input_ids=ids, query_embeds=ref.query_tokens.expand(3, -1, -1))  # [3, 5+5, 16]
        expected = ref.qformer(
            query_embeds=joint,
            query_length=5,
            attention_mask=attention_mask(5, mask, "generate"),
            encoder_hidden_states=feats,
        ).last_hidden_state
        torch.testing.assert_close(torch.cat([q, t], 1), expected, atol=1e-5, rtol=1e-5)
        # the queries of this pass are the connector's own query outputs (ITC reads them), and text is causal
        torch.testing.assert_close(q, qformer.encode_queries(feats), atol=1e-5, rtol=1e-5)
        changed = ids.clone()
        changed[:, 3] = 10
        _, t2 = stage1.run(qformer, feats, changed, mask, "generate")
        torch.testing.assert_close(t2[:, :3], t[:, :3])
        assert not torch.allclose(t2[:, 3], t[:, 3])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(tiny_cfg("qformer", QF), text_corpus=CORPUS)


def _caption_batch(model, n=3):
    return model.collate(
        [{"id": str(i), "image": im, "text": t} for i, (im, t) in enumerate(zip(images(n), CORPUS[:n]))]
    )


def test_losses_are_finite_and_reach_the_qformer(model):
    batch = _caption_batch(model)
    tokens, mask = caption_tokens(batch, model.image_token_id)
    assert model.tokenizer.decode(tokens[1][mask[1].bool()]) == "two green triangles</s>"
    model.zero_grad()
    out = model.training_loss(batch, "qformer")
    assert {"loss", "itc", "itm", "itg", "itm_acc", "temp"} <= set(out)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    torch.testing.assert_close(out["loss"], out["itc"] + out["itm"] + out["itg"])
    qf = model.connector
    for part in ("itc", "itm", "itg"):  # each loss on its own trains the queries and their attention to the image
        model.zero_grad()
        out[part].backward(retain_graph=True)
        for p in (qf.query_tokens, qf.layers[0].cross_attn.v_proj.weight, qf.layers[1].self_attn.q_proj.weight):
            assert p.grad is not None and p.grad.abs().sum() > 0, part
    model.zero_grad()
    out["loss"].backward()
    s1 = model.qformer_stage1
    for p in (
        qf.query_tokens,
        qf.layers[0].cross_attn.q_proj.weight,
        qf.layers[0].self_attn.k_proj.weight,
        s1.word_embeddings.weight,
        s1.text_ffn[1].fc1.weight,
        s1.itm_head.weight,
        s1.vision_proj.weight,
        s1.text_proj.weight,
        s1.lm_bias,
        s1.temp,
    ):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert qf.proj.weight.grad is None  # the LM projection is stage 2's
    assert all(p.grad is None for p in model.lm.parameters())
    connector_params = {id(p) for p in model.components()["connector"].parameters()}
    assert {id(p) for p in s1.parameters()} <= connector_params


def test_each_loss_moves_with_its_own_inputs(model):
    """ITG depends on the caption given the image; ITC and ITM see which caption goes with which image."""
    torch.manual_seed(1)
    batch = _caption_batch(model)
    with torch.no_grad():
        base = model.training_loss(batch, "qformer")
        swapped = dict(batch, pixel_values=batch["pixel_values"].flip(0))
        other = model.training_loss(swapped, "qformer")
    assert other["itc"] != base["itc"] and other["itm"] != base["itm"] and other["itg"] != base["itg"]


def test_objective_errors(model):
    conv = [{"from": "human", "value": "<image>\nWhat color?"}, {"from": "gpt", "value": "blue"}]
    batch = model.collate(
        [
            {"id": "a", "image": images(1)[0], "conversations": conv},
            {"id": "b", "image": images(2)[1], "conversations": conv},
        ]
    )
    with pytest.raises(ValueError, match="caption data"):
        model.training_loss(batch, "qformer")
    torch.manual_seed(0)
    mlp = build_model(tiny_cfg("mlp"), text_corpus=CORPUS)
    assert mlp.qformer_stage1 is None
    with pytest.raises(ConfigError, match="connector: {name: qformer}"):
        mlp.training_loss(_caption_batch(mlp), "qformer")


def test_itc_similarity_and_save_load(model, tmp_path):
    model.eval()
    sim = itc_similarity(model, images(3), CORPUS[:2])
    assert sim.shape == (3, 2)
    model.save_pretrained(tmp_path / "m")
    again = load_model(tmp_path / "m")
    torch.testing.assert_close(itc_similarity(again, images(3), CORPUS[:2]), sim)
    # a model saved before stage 1 existed (format 1: no qformer_stage1.* weights, no manifest) still loads
    (tmp_path / "m" / "manifest.json").unlink()
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["references"] == {}  # all from scratch, so format 1 describes the same model
    (tmp_path / "m" / "config.json").write_text(json.dumps({**meta, "format": 1}))
    state = load_file(tmp_path / "m" / "model.safetensors")
    save_file(
        {k: v for k, v in state.items() if not k.startswith("qformer_stage1.")}, tmp_path / "m" / "model.safetensors"
    )
    assert load_model(tmp_path / "m").connector.query_tokens.shape == (1, 4, 16)
    state = {k: v for k, v in state.items() if not k.startswith("connector.")}
    save_file(state, tmp_path / "m" / "model.safetensors")
    with pytest.raises(ConfigError, match="missing"):
        load_model(tmp_path / "m")


def _retrieval(model, ds) -> dict:
    from modalign.eval.metrics.retrieval import recall_at_k

    items = [ds[i] for i in range(len(ds))]
    sim = itc_similarity(model, [it["image"] for it in items], [it["text"] for it in items])
    return recall_at_k(sim.numpy(), list(range(len(items))), ks=(1, 5))


@pytest.mark.slow
def test_stage1_training_lowers_the_loss_and_improves_itc_retrieval(tmp_path):
    from modalign.config import RecipeConfig
    from modalign.data import DATASETS
    from modalign.trainer import run_recipe

    torch.manual_seed(0)
    recipe = RecipeConfig.model_validate(
        {
            "name": "blip2-stage1-tiny",
            "seed": 0,
            "model": {
                "kind": "vlm",
                "vision": {"name": "efficientnet-lite0", "image_size": 64},
                "connector": {"name": "qformer", "num_queries": 4, "hidden_dim": 64, "num_layers": 2, "heads": 4},
                "lm": {
                    "name": "tiny-llama",
                    "hidden_size": 32,
                    "num_layers": 1,
                    "num_heads": 2,
                    "intermediate_size": 64,
                    "max_position_embeddings": 128,
                    "vocab_size": 300,
                },
            },
            "stages": [
                {
                    "name": "qformer",
                    "objective": "qformer",
                    "train": ["connector"],
                    "data": {"name": "shapes", "task": "caption", "split": "train", "n": 256, "caption": "short"},
                    "steps": 100,
                    "batch_size": 16,
                    "lr": 0.002,
                    "warmup_steps": 5,
                    "log_every": 5,
                }
            ],
        }
    )
    init = {}

    def builder(cfg, text_corpus=None):
        m = build_model(cfg, text_corpus=text_corpus)
        init.update({k: v.clone() for k, v in m.state_dict().items()})
        return m

    run_recipe(recipe, tmp_path / "run", model_builder=builder, progress=False)
    logs = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logs if "loss" in r and "event" not in r]
    assert len(losses) == 20
    parts = [{k: round(r[k], 3) for k in ("loss", "itc", "itm", "itg", "itm_acc")} for r in logs if "itc" in r]
    print(f"stage-1 losses, first and last logged: {parts[0]} -> {parts[-1]}")
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5, losses

    test = DATASETS["shapes"](task="caption", split="test", n=64, caption="short")  # i.i.d., unseen scenes
    trained = load_model(tmp_path / "run" / "final")
    after = _retrieval(trained, test)
    trained.load_state_dict(init)
    before = _retrieval(trained.eval(), test)
    print(f"ITC retrieval, 64 unseen test images: {before} at init -> {after} after 100 steps")
    assert after["mean_R"] > before["mean_R"] + 0.12, (before, after)  # mean of R@1 and R@5, both directions
    assert after["t2i_R@1"] > before["t2i_R@1"] and after["i2t_R@1"] > before["i2t_R@1"]
