"""Streamed generation: `stream` yields the answer so far token by token and ends on exactly `complete`'s answer."""

from itertools import pairwise

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.models.vlm import VisionLanguageModel

QUESTIONS = ["What color is the square?", "Is there a circle?", "Describe the picture."]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).eval()
    with torch.no_grad():  # sharpen the random LM so greedy choices are not near-ties
        m.lm.lm_head.weight.mul_(8)
    return m


def _prompt(model, question: str) -> str:
    return model.prompts.chat_prefix(question)


def test_stream_grows_token_by_token_and_ends_on_the_greedy_answer(model):
    for im, q in zip(images(3, seed=1), QUESTIONS):
        text = _prompt(model, q)
        (expected,), logits = model.complete([im], [text], max_new_tokens=12, return_logits=True)
        states = list(model.stream(im, text, max_new_tokens=12))
        assert states[-1] == expected
        assert len(states) > 1 and len(states) == len(set(states))  # a new value only when the text changed
        assert len(states) <= logits.shape[1]  # at most one value per decoded token
        assert all(b.startswith(a.rstrip()) for a, b in pairwise(states))  # text grows as it is decoded


def test_stream_matches_complete_when_sampling_with_a_penalty_and_a_processor(model):
    im, text = images(1, seed=4)[0], _prompt(model, QUESTIONS[2])
    banned = model.generate([im], [QUESTIONS[2]], max_new_tokens=1, return_logits=True)[1][0, 0].argmax()

    def ban(generated, logits):
        return logits.index_fill(-1, banned[None], float("-inf"))

    kw = dict(max_new_tokens=10, do_sample=True, temperature=0.8, top_k=20, repetition_penalty=1.3)
    for seed in range(4):
        want = model.complete([im], [text], generator=torch.Generator().manual_seed(seed), logits_processor=ban, **kw)
        got = list(model.stream(im, text, generator=torch.Generator().manual_seed(seed), logits_processor=ban, **kw))
        assert got[-1] == want[0]


def test_a_conversation_streams_like_the_terminal_chat_reply(model):
    from modalign.cli.chat import reply

    im = images(1, seed=2)[0]
    messages = [{"role": "user", "content": "<image>\nWhat color?"}]
    first = reply(model, im, messages, max_new_tokens=6)
    messages += [{"role": "assistant", "content": first}, {"role": "user", "content": "And the shape?"}]
    text = model.prompts.render(messages, add_generation_prompt=True)
    assert list(model.stream(im, text, max_new_tokens=6))[-1] == reply(model, im, messages, max_new_tokens=6)


def test_stream_yields_once_for_an_empty_answer_and_checks_its_arguments(model):
    im, text = images(1)[0], _prompt(model, QUESTIONS[0])
    stop = model.stop_token_ids()[0]

    def stop_now(generated, logits):
        out = torch.full_like(logits, float("-inf"))
        out[:, stop] = 0.0
        return out

    assert list(model.stream(im, text, logits_processor=stop_now)) == [""]
    with pytest.raises(ValueError, match="repetition_penalty"):
        next(model.stream(im, text, repetition_penalty=0))
    with pytest.raises(ValueError, match="logits_processor must be callable"):
        next(model.stream(im, text, logits_processor="no"))
