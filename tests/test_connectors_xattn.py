"""Tests for the `xattn` connector: the zero-gate identity inside a real (tiny) LlamaForCausalLM, KV-cache decoding,
gradients, masks, and parity of the gated block with transformers' IdeficsGatedCrossAttentionLayer."""

import pytest
import torch

from modalign.connectors import CONNECTORS, GatedCrossAttentionBlock
from modalign.connectors.hf_port import xattn_block_from_idefics
from modalign.models.lm_cache import cache_kw, cache_of
from modalign.registry import ConfigError


def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    return LlamaForCausalLM(cfg).eval()


def open_gates(conn, value=0.5):
    with torch.no_grad():
        for block in conn.blocks:
            block.attn_gate.fill_(value)
            block.ff_gate.fill_(value)


def test_zero_gates_leave_the_lm_exactly_unchanged():
    lm = tiny_llama()
    ids = torch.randint(3, 64, (2, 7))
    with torch.no_grad():
        bare = lm(input_ids=ids).logits
    conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, every=2, heads=4).install(lm.model.layers)
    assert conn.fusion == "xattn" and conn.num_tokens(10) == 0 and len(conn.blocks) == 2
    conn.set_media(torch.randn(2, 10, 12))
    with torch.no_grad():
        fused = lm(input_ids=ids).logits
    assert torch.equal(fused, bare)
    # The LM's own module tree and checkpoint keys are untouched by installing.
    assert not any("xattn" in k or "blocks" in k for k in lm.state_dict())
    # Open gates: the media now change the logits; cleared media: back to the bare LM exactly.
    open_gates(conn)
    with torch.no_grad():
        assert not torch.allclose(lm(input_ids=ids).logits, bare)
        conn.clear_media()
        assert torch.equal(lm(input_ids=ids).logits, bare)
    conn.uninstall()
    conn.set_media(torch.randn(2, 10, 12))
    with torch.no_grad():
        assert torch.equal(lm(input_ids=ids).logits, bare)


def test_float32_blocks_inside_a_bfloat16_lm():
    lm = tiny_llama().to(torch.bfloat16)
    ids = torch.randint(3, 64, (2, 5))
    with torch.no_grad():
        bare = lm(input_ids=ids).logits
        conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, heads=4).install(lm.model.layers)
        conn.set_media(torch.randn(2, 4, 12))
        assert torch.equal(lm(input_ids=ids).logits, bare)
        open_gates(conn)
        assert lm(input_ids=ids).logits.dtype == torch.bfloat16


def test_gradients_reach_the_gates_at_init_and_everything_once_open():
    lm = tiny_llama()
    lm.requires_grad_(False)
    conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, every=1, heads=4).install(lm.model.layers)
    media = torch.randn(2, 10, 12, requires_grad=True)
    ids = torch.randint(3, 64, (2, 5))
    conn.set_media(media)
    lm(input_ids=ids, labels=ids).loss.backward()
    # tanh'(0) = 1, so the gates learn from step one even though the rest of the block gets zero gradient.
    assert all(b.attn_gate.grad.abs().sum() > 0 and b.ff_gate.grad.abs().sum() > 0 for b in conn.blocks)
    conn.zero_grad()
    open_gates(conn)
    conn.set_media(media)
    lm(input_ids=ids, labels=ids).loss.backward()
    missing = [n for n, p in conn.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == [] and media.grad.abs().sum() > 0


def test_kv_cache_decoding_equals_full_recomputation():
    lm = tiny_llama()
    conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, every=2, heads=4, num_latents=4).install(lm.model.layers)
    open_gates(conn, 0.8)
    conn.set_media(torch.randn(2, 9, 12))
    prompt = torch.randint(3, 64, (2, 4))
    with torch.no_grad():
        cached = lm.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=True, min_new_tokens=6)
        uncached = lm.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False, min_new_tokens=6)
        assert torch.equal(cached, uncached)
        # Step-by-step logits with the cache equal one full forward over the whole sequence.
        full = lm(input_ids=cached).logits
        out = lm(input_ids=cached[:, :4], use_cache=True)
        steps, past = [out.logits], cache_of(out)
        for t in range(4, cached.shape[1]):
            out = lm(input_ids=cached[:, t : t + 1], **cache_kw(lm, past), use_cache=True)
            steps.append(out.logits)
            past = cache_of(out)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    conn.clear_media()  # the media did take part in every step above
    with torch.no_grad():
        assert not torch.allclose(lm(input_ids=cached).logits, full)


def test_media_follow_sequences_repeated_by_generate():
    lm = tiny_llama()
    conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, heads=4).install(lm.model.layers)
    open_gates(conn)
    media = torch.randn(2, 5, 12)
    ids = torch.randint(3, 64, (2, 6))
    repeated = ids.repeat_interleave(2, 0)  # what generate does for beams / num_return_sequences
    with torch.no_grad():
        conn.set_media(media.repeat_interleave(2, 0))
        expected = lm(input_ids=repeated).logits
        conn.set_media(media)
        assert torch.equal(lm(input_ids=repeated).logits, expected)
        beams = lm.generate(ids, max_new_tokens=3, num_beams=2, num_return_sequences=2, do_sample=False)
    assert beams.shape[0] == 4
    with pytest.raises(ValueError, match="one entry per sequence"):
        lm(input_ids=torch.randint(3, 64, (3, 4)))


def test_masked_media_and_samples_without_media():
    torch.manual_seed(0)
    block = GatedCrossAttentionBlock(d_model=16, d_media=8, heads=2)
    with torch.no_grad():
        block.attn_gate.fill_(1.0)  # ff gate stays closed so the block's output is the attention path alone
    x, media = torch.randn(2, 3, 16), torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    out = block(x, media, mask)
    assert torch.equal(out[1], x[1])  # no media for sample 1: untouched
    changed = media.clone()
    changed[0, 3:] += 4.0
    torch.testing.assert_close(block(x, changed, mask), out)


def test_install_errors_and_layer_choice():
    lm = tiny_llama()
    conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, heads=4, num_layers=6)
    with pytest.raises(ConfigError, match="num_layers=6"):
        conn.install(lm.model.layers)
    conn = CONNECTORS["xattn"](in_dim=12, out_dim=32, heads=4, every=3).install(lm.model.layers)
    assert len(conn.blocks) == 2  # before layers 0 and 3
    assert [len(layer._forward_pre_hooks) for layer in lm.model.layers] == [1, 0, 0, 1]
    with pytest.raises(RuntimeError, match="already installed"):
        conn.install(lm.model.layers)
    with pytest.raises(ConfigError, match="every"):
        CONNECTORS["xattn"](in_dim=12, out_dim=32, every=0)


@pytest.mark.parametrize("alpha_type,qk_norm", [("float", False), ("vector", True)])
def test_block_matches_idefics_gated_cross_attention(alpha_type, qk_norm):
    from transformers import IdeficsConfig
    from transformers.models.idefics.modeling_idefics import IdeficsGatedCrossAttentionLayer

    torch.manual_seed(0)
    cfg = IdeficsConfig(
        hidden_size=16,
        intermediate_size=40,
        num_attention_heads=2,
        vocab_size=50,
        vision_config=dict(embed_dim=8),
        qk_layer_norms=qk_norm,
        alpha_type=alpha_type,
        alpha_initializer="zeros",
    )
    ref = IdeficsGatedCrossAttentionLayer(cfg, layer_idx=0).eval()
    with torch.no_grad():  # open the gates (Idefics' "normal" init fails for float gates) and perturb the norms
        for name, p in ref.named_parameters():
            if "alpha" in name:
                p.copy_(torch.randn_like(p) * 0.5)
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    ours = GatedCrossAttentionBlock(
        d_model=16,
        d_media=8,
        heads=2,
        ff_dim=40,
        norm="rmsnorm",
        ffn="swiglu",
        gate=alpha_type,
        qk_norm="rmsnorm" if qk_norm else None,
        eps=cfg.rms_norm_eps,
    ).eval()
    xattn_block_from_idefics(ours, ref.state_dict())
    assert ours.attn_gate.abs().sum() > 0 and ours.ff_gate.abs().sum() > 0
    x, media = torch.randn(2, 4, 16), torch.randn(2, 6, 8)
    expected = ref(x, image_hidden_states=media, cross_attention_gate=torch.ones(2, 4))
    torch.testing.assert_close(ours(x, media), expected, atol=1e-5, rtol=1e-5)
    # Padding in the media: Idefics takes an additive [B, 1, T, N] mask, we take a [B, N] boolean one.
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[0, 4:] = False
    additive = torch.zeros(2, 1, 4, 6).masked_fill(~mask[:, None, None, :], torch.finfo(torch.float32).min)
    expected = ref(x, image_hidden_states=media, image_attention_mask=additive, cross_attention_gate=torch.ones(2, 4))
    torch.testing.assert_close(ours(x, media, mask), expected, atol=1e-5, rtol=1e-5)
