"""Beam search == transformers' beam search on the same weights (stop tokens reached, length penalties, the three
early-stopping modes, repetition penalty, left-padded batches), num_beams=1 == greedy, cross-attention fusion, and
bad arguments refused."""

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.models.vlm import VisionLanguageModel

QUESTIONS = ["What color is the square?", "Is there a circle?", "Describe the picture.", "two?"]


def _sharpened(connector: str = "mlp", **params) -> VisionLanguageModel:
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(connector, params), text_corpus=CORPUS).eval()
    with torch.no_grad():  # sharper than the random init, so that beams differ from greedy and ties are rare
        m.lm.lm_head.weight.mul_(8)
    return m


def _with_stops() -> VisionLanguageModel:
    """Each stop token's output row is a slightly weaker copy of a token the random LM keeps writing, so that
    hypotheses do end on stop tokens, at different lengths (asserted below)."""
    m = _sharpened()
    _, logits = m.generate(images(4, seed=5), QUESTIONS, max_new_tokens=12, return_logits=True)
    frequent = torch.bincount(logits.argmax(-1).flatten()).argsort(descending=True).tolist()
    with torch.no_grad():
        w = m.lm.lm_head.weight
        for stop, tok in zip(m.stop_token_ids(), frequent[1:]):
            w[stop] = w[tok] * 0.97
    return m


@pytest.fixture(scope="module")
def model():
    return _with_stops()


def _transformers_beams(model, ims, questions, penalty=1.0, **kw) -> torch.Tensor:
    """transformers' generate(num_beams=...) on the model's own LM, fed the same merged image + prompt embeddings
    (and the prompt ids, which its repetition penalty reads)."""
    texts = model._prompt_texts(len(questions), questions, True)
    pixels, counts, token_counts, layouts = model._pixels(ims)
    rows, _ = model._encode_rows(texts, token_counts)
    batch = model.prompts.pad(rows, side="left")
    with torch.no_grad():
        embeds = model.prepare_inputs(batch["input_ids"], pixels, counts, None, layouts)
        out = model.lm.generate(
            input_ids=batch["input_ids"],
            inputs_embeds=embeds,
            attention_mask=batch["attention_mask"],
            do_sample=False,
            eos_token_id=model.stop_token_ids(),
            pad_token_id=model.prompts.pad_id,
            repetition_penalty=penalty,
            **kw,
        )
    return out[:, batch["input_ids"].shape[1] :]


@pytest.mark.parametrize(
    "beams,length_penalty,early_stopping",
    [(2, 1.0, False), (3, 1.0, False), (4, 0.5, True), (2, 2.0, "never"), (5, 1.0, False), (4, -1.0, False)],
)
def test_beam_search_equals_transformers(model, beams, length_penalty, early_stopping):
    ims = images(4, seed=5)
    ours = model.generate(
        ims, QUESTIONS, max_new_tokens=12, num_beams=beams, length_penalty=length_penalty, early_stopping=early_stopping
    )
    theirs = _transformers_beams(
        model,
        ims,
        QUESTIONS,
        num_beams=beams,
        max_new_tokens=12,
        length_penalty=length_penalty,
        early_stopping=early_stopping,
    )
    assert ours == model._detok(theirs)
    alone = [
        model.generate(
            [im], [q], max_new_tokens=12, num_beams=beams, length_penalty=length_penalty, early_stopping=early_stopping
        )[0]
        for im, q in zip(ims, QUESTIONS)
    ]
    assert alone == ours  # left padding changes nothing


def test_hypotheses_end_on_stop_tokens_and_beams_change_the_text(model):
    ims = images(4, seed=5)
    theirs = _transformers_beams(model, ims, QUESTIONS, num_beams=5, max_new_tokens=12)
    stopped = torch.isin(theirs, torch.tensor(model.stop_token_ids())).any(-1)
    assert stopped.any() and not stopped.all()  # the comparison above covers both endings
    assert model.generate(ims, QUESTIONS, max_new_tokens=12, num_beams=3) != model.generate(
        ims, QUESTIONS, max_new_tokens=12
    )


@pytest.mark.parametrize("beams,penalty", [(2, 1.5), (3, 3.0)])
def test_beam_search_with_repetition_penalty_equals_transformers(model, beams, penalty):
    ims = images(4, seed=5)
    ours = model.generate(ims, QUESTIONS, max_new_tokens=12, num_beams=beams, repetition_penalty=penalty)
    assert ours != model.generate(ims, QUESTIONS, max_new_tokens=12, num_beams=beams)
    theirs = _transformers_beams(model, ims, QUESTIONS, penalty, num_beams=beams, max_new_tokens=12)
    assert ours == model._detok(theirs)


def test_one_beam_is_greedy_and_bad_arguments_are_refused(model):
    ims = images(2)
    assert model.generate(ims, QUESTIONS[:2], max_new_tokens=8, num_beams=1) == model.generate(
        ims, QUESTIONS[:2], max_new_tokens=8
    )
    for bad in (0, 2.0, True, "3"):
        with pytest.raises(ValueError, match="num_beams"):
            model.generate(ims, QUESTIONS[:2], num_beams=bad)
    with pytest.raises(ValueError, match="length_penalty"):
        model.generate(ims, QUESTIONS[:2], num_beams=2, length_penalty="long")
    with pytest.raises(ValueError, match="early_stopping"):
        model.generate(ims, QUESTIONS[:2], num_beams=2, early_stopping="soon")
    with pytest.raises(ValueError, match="sample"):
        model.generate(ims, QUESTIONS[:2], num_beams=2, do_sample=True)
    with pytest.raises(ValueError, match="return_logits"):
        model.generate(ims, QUESTIONS[:2], num_beams=2, return_logits=True)


def test_cross_attention_fusion_beams_read_their_own_row_image():
    m = _sharpened("xattn", every=1)
    ims = images(3, seed=9)
    batched = m.generate(ims, QUESTIONS[:3], max_new_tokens=8, num_beams=3)
    assert batched == [m.generate([im], [q], max_new_tokens=8, num_beams=3)[0] for im, q in zip(ims, QUESTIONS[:3])]
    assert m.generate(ims, QUESTIONS[:3], max_new_tokens=8, num_beams=1) == m.generate(
        ims, QUESTIONS[:3], max_new_tokens=8
    )


def _logp(*probs) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_a_row_that_cannot_improve_takes_no_more_hypotheses():
    """Hand-worked, one beam, tokens 0 = stop, 1, 2, 3, length penalty 1. Row 0: stop first with p 0.37 (hypothesis
    score ln 0.37 = -0.994); token 1 (ln 0.30 = -1.204) runs on, and as -1.204 / 1 cannot beat -0.994 the row closes.
    Its later 1-then-stop (-1.204 + ln 0.9 = -1.309, / 2 = -0.654) would score higher but is not taken, as in
    transformers. Row 1 never stops and keeps the search going to max_new_tokens."""
    from modalign.models.beam_search import beam_search

    row0 = {None: _logp(0.37, 0.30, 0.20, 0.13), 1: _logp(0.90, 0.05, 0.03, 0.02)}
    row1 = _logp(0.001, 0.009, 0.98, 0.01)
    fed = []

    def advance(tokens, order):
        assert order.tolist() == [0, 1]  # one beam per row: nothing to reorder
        fed.append(tokens.tolist())
        return torch.stack([row0.get(int(tokens[0]), row1), row1])

    out = beam_search(
        torch.stack([row0[None], row1]),
        advance,
        num_beams=1,
        max_new_tokens=3,
        stop_ids=[0],
        pad_id=-1,
        length_penalty=1.0,
    )
    assert out.tolist() == [[0, -1, -1], [2, 2, 2]]
    assert fed == [[1, 2], [1, 2]]  # row 0 ran on (its 1-then-stop ended but was not taken; 1-then-1 ran)
