"""Questions grouped by image content through `answer_many` give the answers of the plain batched path."""

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.data import DATASETS
from modalign.eval.suites import SUITES
from modalign.eval.suites.common import generate, group_by_content
from modalign.models.vlm import VisionLanguageModel

QUESTIONS = ["What color is the square?", "Is there a circle?", "Describe the picture.", "two?", "yes", "no"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).eval()
    with torch.no_grad():  # sharpen the random LM so greedy choices are not near-ties
        m.lm.lm_head.weight.mul_(8)
    return m


class WithoutPrefixReuse(torch.nn.Module):
    """The same model seen without `answer_many`: the suites then take the ungrouped path."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def generate(self, *args, **kwargs):
        return self.inner.generate(*args, **kwargs)

    def score(self, *args, **kwargs):
        return self.inner.score(*args, **kwargs)


def test_grouping_is_by_pixels_not_by_object():
    a, b = images(2)
    assert group_by_content([a, b, a.copy(), b, a]) == [[0, 2, 4], [1, 3]]


def test_grouped_answers_equal_ungrouped(model, monkeypatch):
    ims = images(3, seed=5)
    pictures = [ims[0], ims[0].copy(), ims[1], ims[0], ims[2], ims[1].copy(), ims[0], ims[1]]
    prompts = [QUESTIONS[i % len(QUESTIONS)] for i in range(len(pictures))]
    calls = []
    original = model.answer_many
    monkeypatch.setattr(model, "answer_many", lambda im, qs, **kw: calls.append(len(qs)) or original(im, qs, **kw))
    grouped = generate(model, pictures, prompts, 3, 6, progress=False)
    plain = generate(model, pictures, prompts, 3, 6, progress=False, group_by_image=False)
    assert grouped == plain and calls == [4, 3]  # image 0 four times, image 1 three times, image 2 alone
    penalised = generate(model, pictures, prompts, 3, 6, progress=False, repetition_penalty=1.3)
    assert penalised == generate(model, pictures, prompts, 3, 6, False, 1.3, group_by_image=False)


def test_vqa_and_pope_suites_give_the_same_answers_grouped(model):
    for suite, task in (("vqa", "vqa"), ("pope", "pope")):
        data = DATASETS["shapes"](task=task, n=3, image_size=32, split="test")
        grouped = SUITES[suite](model, data, n_gallery=100, progress=False)
        plain = SUITES[suite](WithoutPrefixReuse(model), data, n_gallery=100, progress=False)
        assert [s["answer"] for s in grouped["samples"]] == [s["answer"] for s in plain["samples"]]
        assert grouped["metrics"] == plain["metrics"] and len(grouped["samples"]) == len(data) > 3
