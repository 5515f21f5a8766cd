"""VLM inference: KV-cached decoding == full recomputation, batched == unbatched, prefix-cache answers == generate,
scores == hand-summed log-probabilities, sampling, repetition penalty == transformers' on a recomputed reference,
and an end-to-end caption fit."""

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg
from transformers import RepetitionPenaltyLogitsProcessor

from modalign.models.vlm import VisionLanguageModel
from modalign.models.vlm_inference import penalize_repeats

QUESTIONS = ["What color is the square?", "Is there a circle?", "Describe the picture.", "two?"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).eval()
    with torch.no_grad():  # sharpen the random LM so greedy choices are not near-ties
        m.lm.lm_head.weight.mul_(8)
    return m


def _full_logits(model, image, prompt, generated):
    """Reference: re-run the whole sequence (prompt + generated tokens) without a cache, one row, no padding."""
    ids = model.prompts.encode(model.prompts.chat_prefix(prompt))[0] + generated
    ids = torch.tensor([ids])
    logits = model.forward_logits(ids, torch.ones_like(ids), model.vision.preprocess([image]), [1])
    n = len(generated)
    return logits[0, -n - 1 :]  # the positions that predicted each generated token and the next one


def test_kv_cache_decoding_equals_full_recomputation_and_batching(model):
    ims = images(3)
    prompts = QUESTIONS[:3]
    answers, step_logits = model.generate(ims, prompts, max_new_tokens=6, return_logits=True)
    for i, (im, p) in enumerate(zip(ims, prompts)):
        alone, alone_logits = model.generate([im], [p], max_new_tokens=6, return_logits=True)
        assert alone == [answers[i]]  # batched (left-padded) == unbatched
        greedy = alone_logits[0].argmax(-1).tolist()
        ref = _full_logits(model, im, p, greedy)
        assert ref[:-1].argmax(-1).tolist() == greedy  # greedy tokens identical to the uncached recomputation
        assert torch.allclose(alone_logits[0], ref[:-1], atol=1e-4)
        n = alone_logits.shape[1]
        assert torch.allclose(step_logits[i, :n], alone_logits[0], atol=1e-4)


def test_prefix_cache_answers_equal_plain_generate(model):
    im = images(1, seed=7)[0]
    plain, plain_logits = model.generate([im] * len(QUESTIONS), QUESTIONS, max_new_tokens=6, return_logits=True)
    shared, shared_logits = model.answer_many(im, QUESTIONS, max_new_tokens=6, batch_size=3, return_logits=True)
    assert shared == plain
    for a, b in zip(shared_logits, plain_logits):
        assert torch.allclose(a, b[: a.shape[0]], atol=1e-4)


def test_suites_answer_questions_about_one_image_together_as_plain_generate_does(model):
    from modalign.eval.suites.common import generate

    ims = [images(1, seed=7)[0]] * 3 + [images(1, seed=8)[0]] * 2  # rows showing one image are grouped
    prompts = QUESTIONS[:3] + QUESTIONS[1:3]
    grouped = generate(model, ims, prompts, 4, 6, False)
    assert grouped == generate(model, ims, prompts, 4, 6, False, group_by_image=False)


def test_score_without_images_is_the_text_only_log_probability(model):
    texts, prompts = ["yes", "a red circle"], ["Is it red?", "Describe the picture."]
    got = model.score(None, texts, prompts, normalize=False)
    for text, prompt, value in zip(texts, prompts, got):
        prefix = model.prompts.chat_prefix(prompt, with_image=False)
        ids = model.prompts.encode(prefix + text)[0]
        n = len(model.prompts.encode(prefix)[0])
        logp = model.forward_logits(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long)).log_softmax(-1)
        assert value.item() == pytest.approx(sum(logp[0, t - 1, ids[t]].item() for t in range(n, len(ids))), abs=1e-4)


def test_score_is_the_summed_log_probability_of_the_text(model):
    ims = images(2, seed=2)
    texts = ["a red circle", "two green triangles"]
    total = model.score(ims, texts, normalize=False)
    mean = model.score(ims, texts)
    for i, (im, text) in enumerate(zip(ims, texts)):
        prefix = model.prompts.encode(model.prompts.caption_prefix())[0]
        target = model.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prefix + target])
        logp = model.forward_logits(ids, torch.ones_like(ids), model.vision.preprocess([im]), [1])[0].log_softmax(-1)
        ref = sum(float(logp.detach()[len(prefix) - 1 + k, t]) for k, t in enumerate(target))
        assert abs(float(total[i]) - ref) < 1e-4
        assert abs(float(mean[i]) - ref / len(target)) < 1e-5
    with_prompt = model.score(ims, texts, prompts=["Describe the picture."] * 2)
    assert not torch.allclose(with_prompt, mean)


def test_yes_no_probabilities_are_a_distribution_over_the_two_answers(model):
    p = model.yes_no_probs(images(2), ["Is there a circle?", "Is it blue?"])
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_sampling_is_reproducible_with_a_generator_and_top_k_1_is_greedy(model):
    ims, prompts = images(2), QUESTIONS[:2]
    a = model.generate(ims, prompts, max_new_tokens=5, do_sample=True, generator=torch.Generator().manual_seed(3))
    b = model.generate(ims, prompts, max_new_tokens=5, do_sample=True, generator=torch.Generator().manual_seed(3))
    assert a == b
    assert model.generate(ims, prompts, max_new_tokens=5, do_sample=True, top_k=1, temperature=0.7) == model.generate(
        ims, prompts, max_new_tokens=5
    )
    with pytest.raises(ValueError, match="temperature"):
        model.generate(ims, prompts, do_sample=True, temperature=0.0)


def test_repetition_penalty_is_transformers_processor():
    torch.manual_seed(0)
    logits = torch.randn(3, 50) * 3
    ids = torch.randint(0, 50, (3, 7))
    seen = torch.zeros(3, 50, dtype=torch.bool).scatter_(1, ids, True)
    for penalty in (1.3, 0.7):
        theirs = RepetitionPenaltyLogitsProcessor(penalty)(ids, logits.clone())
        assert torch.allclose(penalize_repeats(logits, seen, penalty), theirs)
    assert torch.equal(penalize_repeats(logits, seen, 1.0), logits)


def _penalized_reference(model, image, prompt, penalty, steps):
    """Greedy with the whole sequence recomputed at every step (no cache, one row, no padding) and transformers'
    RepetitionPenaltyLogitsProcessor applied to prompt + generated ids."""
    ids = model.prompts.encode(model.prompts.chat_prefix(prompt))[0]
    n_prompt, stop = len(ids), set(model.stop_token_ids())
    processor = RepetitionPenaltyLogitsProcessor(penalty)
    for _ in range(steps):
        x = torch.tensor([ids])
        last = model.forward_logits(x, torch.ones_like(x), model.vision.preprocess([image]), [1])[:, -1]
        nxt = int(processor(x, last).argmax(-1))
        ids.append(nxt)
        if nxt in stop:
            break
    return ids[n_prompt:]


def test_repetition_penalty_decoding_equals_a_recomputed_reference_batched_and_shared(model):
    ims, prompts = images(3, seed=5), QUESTIONS[:3]
    steps = 12
    plain = model.generate(ims, prompts, max_new_tokens=steps)
    assert model.generate(ims, prompts, max_new_tokens=steps, repetition_penalty=1.0) == plain
    penalized = model.generate(ims, prompts, max_new_tokens=steps, repetition_penalty=3.0)  # batched, left-padded
    assert penalized != plain  # the sharpened random LM repeats itself: a strong penalty changes what it says
    for i, (im, p) in enumerate(zip(ims, prompts)):
        ref = _penalized_reference(model, im, p, 3.0, steps)
        assert penalized[i] == model._detok(torch.tensor([ref]))[0]
    im = ims[0]
    shared = model.answer_many(im, QUESTIONS, max_new_tokens=steps, batch_size=3, repetition_penalty=3.0)
    assert shared == model.generate([im] * len(QUESTIONS), QUESTIONS, max_new_tokens=steps, repetition_penalty=3.0)
    for bad in (0, -1.0, "1.2", True):
        with pytest.raises(ValueError, match="repetition_penalty"):
            model.generate(ims, prompts, repetition_penalty=bad)
        with pytest.raises(ValueError, match="repetition_penalty"):
            model.answer_many(im, QUESTIONS, repetition_penalty=bad)


def test_logits_processor_sees_what_each_row_generated_and_steers_it(model):
    ims, prompts = images(3, seed=5), QUESTIONS[:3]
    plain, plain_logits = model.generate(ims, prompts, max_new_tokens=8, return_logits=True)
    assert model.generate(ims, prompts, max_new_tokens=8, logits_processor=lambda ids, lg: lg) == plain
    stop = model.stop_token_ids()[0]
    vocab = plain_logits.shape[-1]
    wanted = [[(7 * r + 3 * t + 11) % vocab for t in range(5)] + [stop] for r in range(3)]
    wanted = [[t if t not in model.stop_token_ids() else t + 1 for t in w[:-1]] + [stop] for w in wanted]
    seen = []

    def force(generated, logits):  # row r must write wanted[r]; what it got so far must be wanted[r]'s prefix
        t = generated.shape[1]
        seen.append(generated.clone())
        for r in range(generated.shape[0]):
            assert generated[r].tolist() == wanted[r][:t]
        out = torch.full_like(logits, float("-inf"))
        out[torch.arange(3), [w[min(t, 5)] for w in wanted]] = 0.0
        return out

    forced, forced_logits = model.generate(ims, prompts, max_new_tokens=8, logits_processor=force, return_logits=True)
    assert forced == model._detok(torch.tensor(wanted))
    assert [g.shape[1] for g in seen] == list(range(6))  # called once a step, until every row stopped
    assert torch.isfinite(forced_logits).all()  # the returned logits are the model's, before the processor
    first, picked = plain_logits[:, 0].argmax(-1), []

    def ban_first(generated, logits):  # greedy and sampled picks both avoid a banned token
        if generated.shape[1] == 1:
            picked.append(generated[:, 0].clone())
        return (
            logits.index_put((torch.arange(3), first), torch.tensor(float("-inf")))
            if not generated.shape[1]
            else logits
        )

    for kw in ({}, {"do_sample": True, "generator": torch.Generator().manual_seed(0)}):
        model.generate(ims, prompts, max_new_tokens=2, logits_processor=ban_first, **kw)
        assert not (picked.pop() == first).any()
    with pytest.raises(ValueError, match="logits_processor must be callable"):
        model.generate(ims, prompts, logits_processor="ban")
    with pytest.raises(ValueError, match="num_beams=1"):
        model.generate(ims, prompts, num_beams=2, logits_processor=lambda ids, lg: lg)


@pytest.mark.slow
def test_a_tiny_vlm_learns_to_caption_two_images():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS)
    ims = images(2, seed=11)
    caps = ["a red circle above a blue square", "two green triangles"]
    batch = m.collate([{"id": str(i), "image": im, "text": c} for i, (im, c) in enumerate(zip(ims, caps))])
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    for _ in range(80):
        loss = m.training_loss(batch, "caption")["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert loss.item() < 0.1
    assert m.generate(ims, None, max_new_tokens=12) == caps
    s = m.score(ims, [caps[0], caps[0]])
    assert s[0] > s[1]  # the caption is likelier for its own image
