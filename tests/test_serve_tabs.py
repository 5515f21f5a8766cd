"""What each tab of the web demo computes, without a browser: chat turns, the Look map, zero-shot scores, search
ranking and the gap number, each against the project's own functions."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import torch
from serve_models import ANSWERS, QUESTIONS, colour_image, fitted_vlm, image_folder, tiny_dual

pytest.importorskip("gradio", reason="the web demo needs gradio: pip install 'modalign[serve]'")

from modalign.cli.chat import reply
from modalign.eval.metrics.geometry import modality_gap
from modalign.explain import explain
from modalign.serve.chat import answer_stream, shown_messages, user_message
from modalign.serve.gap import gap_view, pair_texts
from modalign.serve.index import build_index, folder_captions
from modalign.serve.look import answer_choices, look, word_choices
from modalign.serve.safety import Refused
from modalign.serve.search import label_probabilities, search

GREEDY = {"mode": "greedy", "max_new_tokens": 16}


@pytest.fixture(scope="module")
def vlm():
    return fitted_vlm()


def test_chat_turns_stream_the_terminal_chats_answers(vlm):
    red = colour_image("red")
    messages = [user_message("<image> " + QUESTIONS[0], first=True)]
    assert messages[0]["content"] == "<image>\n" + QUESTIONS[0]  # a typed marker is dropped, the real one leads
    states = list(answer_stream(vlm, red, messages, GREEDY))
    assert states[-1] == ANSWERS["red"] == reply(vlm, red, messages, max_new_tokens=16)
    assert len(states) > 2 and all(b.startswith(a) for a, b in pairwise(states))
    messages += [{"role": "assistant", "content": states[-1]}, user_message(QUESTIONS[1], first=False)]
    assert list(answer_stream(vlm, red, messages, GREEDY))[-1] == reply(vlm, red, messages, max_new_tokens=16)
    assert shown_messages(messages)[0] == {"role": "user", "content": QUESTIONS[0]}
    sampled = dict(mode="sampling", temperature=0.7, top_k=1, max_new_tokens=16)  # top-1 sampling is greedy
    assert list(answer_stream(vlm, red, messages[:1], sampled))[-1] == ANSWERS["red"]


def test_chat_refuses_what_it_cannot_answer(vlm):
    red = colour_image("red")
    hi = [user_message("hi", True)]
    with pytest.raises(Refused, match="Max new tokens must be between 1 and 256"):
        list(answer_stream(vlm, red, hi, {"max_new_tokens": 0}))
    with pytest.raises(Refused, match="Temperature must be between 0.1 and 2"):
        list(answer_stream(vlm, red, hi, {"mode": "sampling", "temperature": 1e-9}))
    with pytest.raises(Refused, match="Repetition penalty must be a number"):
        list(answer_stream(vlm, red, hi, {"repetition_penalty": "lots"}))
    long = [user_message("two green triangles " * 30, True)]
    with pytest.raises(Refused, match="too long for this model"):
        list(answer_stream(vlm, red, long, GREEDY))


def test_look_explains_a_word_of_an_answer_after_its_question(vlm):
    red = colour_image("red")
    messages = [user_message(QUESTIONS[0], True), {"role": "assistant", "content": ANSWERS["red"]}]
    assert answer_choices(messages) == [(f"1. {ANSWERS['red']}", 1)]
    words = word_choices("a red a")
    assert words == [("a (word 1)", 0), ("red", 1), ("a (word 3)", 2)]
    picture, text = look(vlm, red, messages, 1, 1, None)
    (want,) = explain(vlm, red, ANSWERS["red"], method="rollout", spans=[(2, 5)], prompt=QUESTIONS[0])
    assert f"patch row {want.peak[0]}, column {want.peak[1]} of the 4 x 4 grid" in text and "**red** (rollout)" in text
    assert min(picture.size) >= 320
    assert "gradient" in look(vlm, red, messages, 1, 1, "gradient")[1]
    with pytest.raises(Refused, match="Chat first"):
        look(vlm, None, messages, 1, 0, None)
    with pytest.raises(Refused, match="Choose one of the answers"):
        look(vlm, red, messages, 0, 0, None)
    with pytest.raises(Refused, match="no words"):
        look(vlm, red, [messages[0], {"role": "assistant", "content": "..."}], 1, 0, None)


def test_zero_shot_scores_are_the_models_sigmoid_or_softmax():
    model = tiny_dual()  # SigLIP-trained: one sigmoid per label
    image, labels = colour_image("red"), ["red", "a green thing", "blue"]
    probs = label_probabilities(model, image, labels)
    with torch.no_grad():
        logits = model.logit_scale * (model.embed_images([image]) @ model.embed_texts(labels).T)[0] + model.logit_bias
    assert np.allclose(list(probs.values()), torch.sigmoid(logits).tolist(), atol=1e-6)
    model.head.logit_bias = None  # as a CLIP-trained model: a softmax over the labels
    assert model.logit_bias is None
    probs = label_probabilities(model, image, labels)
    assert sum(probs.values()) == pytest.approx(1.0)
    assert np.allclose(list(probs.values()), logits.softmax(-1).tolist(), atol=1e-5)  # a shared bias cancels out


def test_search_ranks_the_folder_by_cosine_and_the_gap_is_geometrys(tmp_path):
    model = tiny_dual()
    root = image_folder(tmp_path / "f", n=8)
    index = build_index(model, "fp", root, tmp_path / "cache")
    hits = search(model, index, "a red circle", 3)
    sims = index.vectors @ model.embed_texts(["a red circle"]).detach().numpy()[0]
    assert [i for i, _ in hits] == list(np.argsort(-sims)[:3]) and hits[0][1] == pytest.approx(sims.max(), abs=1e-6)
    assert len(search(model, index, "x", 100)) == 9  # never more than there are

    captions = folder_captions(root)
    rows, texts, y = pair_texts(model, index, "captions", captions, None)
    assert [index.names[i] for i in rows] == sorted(captions) and texts == [captions[n] for n in sorted(captions)]
    figure, text = gap_view(model, index, "captions", captions, None)
    _, gap = modality_gap(index.vectors[rows], y)
    assert f"**Modality gap: {gap:.3f}**" in text and "over 8 image-text pairs" in text and figure.size[0] > 300
    rows, texts, _ = pair_texts(model, index, "labels", {}, ["red", "noise"])
    label_sims = index.vectors @ model.embed_texts(["red", "noise"]).detach().numpy().T
    assert rows == list(range(9)) and texts == [["red", "noise"][j] for j in label_sims.argmax(1)]
    with pytest.raises(Refused, match="no captions.jsonl"):
        gap_view(model, index, "captions", {}, None)
