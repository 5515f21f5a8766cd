"""Single-process tests of `modalign.losses`: hand-computed cases, open_clip's reference losses, chunked == plain."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from open_clip_ref import open_clip_loss_module

from modalign.losses import clip_loss, lm_loss, siglip_loss


def _open_clip_loss_module():
    module = open_clip_loss_module()
    if module is None:
        pytest.skip("open_clip_torch is not installed (make setup installs it with --no-deps)")
    return module


def _embeddings(b=6, e=8, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(b, e, generator=g, dtype=dtype), dim=-1).requires_grad_(True)
    txt = F.normalize(torch.randn(b, e, generator=g, dtype=dtype), dim=-1).requires_grad_(True)
    return img, txt


def _grads(loss_fn, *tensors):
    tensors = [t.detach().clone().requires_grad_(True) for t in tensors]
    loss = loss_fn(*tensors)
    loss.backward()
    return loss.detach(), [t.grad for t in tensors]


# --------------------------------------------------------------------------------------------- hand-computed


def test_clip_loss_hand_computed_two_pairs():
    # Orthogonal unit vectors, scale 1: logits = I, every row's CE = -log(e / (e + 1)) = log(1 + 1/e).
    img = torch.eye(2)
    txt = torch.eye(2)
    expected = math.log(1 + math.exp(-1))
    assert clip_loss(img, txt, torch.tensor(1.0)).item() == pytest.approx(expected, abs=1e-6)


def test_siglip_loss_hand_computed_two_pairs():
    # logits = s * I + b with s=2, b=-1: diagonal 1 (positive), off-diagonal -1 (negative).
    # Each of the 4 terms is -log sigmoid(1) = log(1 + e^-1); sum / B = 4 * that / 2.
    img = torch.eye(2)
    txt = torch.eye(2)
    expected = 2 * math.log(1 + math.exp(-1))
    assert siglip_loss(img, txt, torch.tensor(2.0), torch.tensor(-1.0)).item() == pytest.approx(expected, abs=1e-6)


def test_lm_loss_hand_computed_shift_and_mask():
    # Vocabulary 2, uniform logits: every counted token costs log 2. Labels [-100, -100, 1, 0]: after the shift,
    # positions 1 and 2 predict labels 1 and 0 (counted), position 0 predicts -100 (ignored).
    logits = torch.zeros(1, 4, 2, requires_grad=True)
    labels = torch.tensor([[-100, -100, 1, 0]])
    assert lm_loss(logits, labels).item() == pytest.approx(math.log(2), abs=1e-6)
    # Make position 1 confident in token 1 (its target): that term drops towards 0, the mean halves.
    sharp = torch.zeros(1, 4, 2)
    sharp[0, 1, 1] = 50.0
    assert lm_loss(sharp, labels).item() == pytest.approx(math.log(2) / 2, abs=1e-6)


def test_lm_loss_nothing_counted_is_zero_with_gradient():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    loss = lm_loss(logits, torch.full((2, 3), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def test_lm_loss_matches_manual_cross_entropy():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.randint(0, 7, (2, 5), generator=g)
    labels[0, :3] = -100
    manual = [
        F.cross_entropy(logits[b, t - 1], labels[b, t], reduction="sum")
        for b in range(2)
        for t in range(1, 5)
        if labels[b, t] != -100
    ]
    assert lm_loss(logits, labels).item() == pytest.approx(torch.stack(manual).mean().item(), abs=1e-6)


# --------------------------------------------------------------------------------------------- vs open_clip


@pytest.mark.parametrize("seed", [0, 1])
def test_clip_loss_matches_open_clip(seed):
    ref = _open_clip_loss_module().ClipLoss()
    img, txt = _embeddings(seed=seed)
    scale = torch.tensor(1 / 0.07, dtype=torch.float64)
    ours = _grads(lambda i, t, s: clip_loss(i, t, s), img, txt, scale)
    theirs = _grads(lambda i, t, s: ref(i, t, s), img, txt, scale)
    torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=1e-10)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize("chunk_size", [None, 1, 4, 5])
def test_siglip_loss_matches_open_clip(chunk_size):
    ref = _open_clip_loss_module().SigLipLoss()
    img, txt = _embeddings(b=7, seed=chunk_size or 0)
    scale, bias = torch.tensor(10.0, dtype=torch.float64), torch.tensor(-10.0, dtype=torch.float64)
    ours = _grads(lambda i, t, s, b: siglip_loss(i, t, s, b, chunk_size=chunk_size), img, txt, scale, bias)
    theirs = _grads(lambda i, t, s, b: ref(i, t, s, b), img, txt, scale, bias)
    torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=1e-10)
    for a, b in zip(ours[1], theirs[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------------- chunked


def test_siglip_chunked_equals_unchunked_float32():
    img, txt = _embeddings(b=64, e=16, seed=5, dtype=torch.float32)
    scale, bias = torch.tensor(10.0), torch.tensor(-10.0)
    plain = _grads(lambda i, t, s, b: siglip_loss(i, t, s, b), img, txt, scale, bias)
    chunked = _grads(lambda i, t, s, b: siglip_loss(i, t, s, b, chunk_size=10), img, txt, scale, bias)
    torch.testing.assert_close(chunked[0], plain[0], rtol=0, atol=1e-6)
    for a, b in zip(chunked[1], plain[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_siglip_chunked_gradcheck():
    img, txt = _embeddings(b=5, e=3, seed=7)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda i, t, s, b: siglip_loss(i, t, s, b, chunk_size=2), (img, txt, scale, bias))


def test_siglip_chunked_keeps_no_block_alive_for_backward():
    # The graph of a chunked loss saves only its inputs: no [chunk, B] tensor waits for backward.
    img, txt = _embeddings(b=32, e=4, seed=2, dtype=torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        siglip_loss(img, txt, torch.tensor(10.0), torch.tensor(-10.0), chunk_size=4)
    assert all(s.numel() <= 32 * 4 for s in map(torch.Size, saved)), saved


# --------------------------------------------------------------------------------------------- errors


def test_mismatched_batches_say_what_is_wrong():
    with pytest.raises(ValueError, match="pair up"):
        clip_loss(torch.randn(3, 4), torch.randn(2, 4), torch.tensor(1.0))
    with pytest.raises(ValueError, match="chunk_size"):
        siglip_loss(torch.randn(2, 4), torch.randn(2, 4), 10.0, -10.0, chunk_size=0)
    with pytest.raises(ValueError, match=r"\[B, T, V\]"):
        lm_loss(torch.randn(2, 3), torch.zeros(2, 3, dtype=torch.long))


def test_clip_loss_with_labels_spreads_the_target_over_same_label_pairs():
    # two images of class 0 and one of class 1; hand-computed soft-target cross entropy
    img = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=torch.float64)
    txt = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])
    s = 2.0
    logits = s * img @ txt.T
    target = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    by_hand = 0.0
    for m in (logits, logits.T):
        log_p = m - torch.logsumexp(m, dim=1, keepdim=True)
        by_hand += float(-(target * log_p).sum(1).mean()) / 2
    assert float(clip_loss(img, txt, s, labels=labels)) == pytest.approx(by_hand, abs=1e-12)


def test_clip_loss_with_distinct_labels_is_the_plain_loss():
    g = torch.Generator().manual_seed(3)
    img = torch.nn.functional.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=-1)
    plain = clip_loss(img, txt, 10.0)
    labelled = clip_loss(img, txt, 10.0, labels=torch.tensor([5, 1, 2, 3, 4, 0]))
    assert float(plain) == pytest.approx(float(labelled), abs=1e-12)
    with pytest.raises(ValueError, match="labels must be"):
        clip_loss(img, txt, 10.0, labels=torch.tensor([0, 1]))
