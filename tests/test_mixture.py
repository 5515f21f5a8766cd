"""The `mixture` dataset: items drawn from several datasets by weight, deterministic, and trainable in one stage even
when its parts hold different kinds of record (captions beside conversations)."""

import json

import pytest
import torch

import modalign as ma

CAPTIONS = {"name": "shapes", "task": "caption", "split": "train", "n": 6, "caption": "short"}
TALKS = {"name": "shapes", "task": "instruct", "split": "train", "n": 5, "max_turns": 3}


def test_items_come_from_their_part_in_order_with_the_given_shares():
    mix = ma.dataset("mixture", parts=[CAPTIONS, TALKS], weights=[3, 1], n=400, seed=1)
    caps, talks = mix.parts
    assert len(mix) == 400
    n_caps, n_talks = mix.counts()
    assert n_caps + n_talks == 400 and 0.68 < n_caps / 400 < 0.82  # 0.75 expected
    seen = {0: 0, 1: 0}
    for i in range(0, 400, 7):
        part, j = mix.locate(i)
        assert mix[i]["id"] == mix.parts[part][j]["id"]
    for i in range(400):  # each part is read in order, wrapping around
        part, j = mix.locate(i)
        assert j == seen[part] % len(mix.parts[part])
        seen[part] += 1
    assert "text" in mix[next(i for i in range(400) if mix.locate(i)[0] == 0)]
    assert "conversations" in mix[next(i for i in range(400) if mix.locate(i)[0] == 1)]
    again = ma.dataset("mixture", parts=[CAPTIONS, TALKS], weights=[3, 1], n=400, seed=1)
    assert [again.locate(i) for i in range(400)] == [mix.locate(i) for i in range(400)]
    other = ma.dataset("mixture", parts=[CAPTIONS, TALKS], weights=[3, 1], n=400, seed=2)
    assert [other.locate(i) for i in range(400)] != [mix.locate(i) for i in range(400)]
    assert len(ma.dataset("mixture", parts=[CAPTIONS, TALKS])) == len(caps) + len(talks)
    assert ma.dataset("mixture", parts=[CAPTIONS, TALKS], weights=[0, 1], n=50).counts() == [0, 50]
    texts = list(mix.texts())
    assert set(caps.texts()) <= set(texts) and set(talks.texts()) <= set(texts)
    with pytest.raises(IndexError):
        mix[400]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"parts": [CAPTIONS]}, "at least two"),
        ({"parts": [CAPTIONS, "shapes"]}, r"parts\[1\]"),
        ({"parts": [CAPTIONS, {"name": "mixture", "parts": []}]}, "itself a mixture"),
        ({"parts": [CAPTIONS, TALKS], "weights": [1]}, "one per part"),
        ({"parts": [CAPTIONS, TALKS], "weights": [1, -1]}, "non-negative"),
        ({"parts": [CAPTIONS, TALKS], "weights": [0, 0]}, "positive sum"),
        ({"parts": [CAPTIONS, TALKS], "n": 0}, "positive"),
    ],
)
def test_bad_mixtures_say_what_to_change(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ma.dataset("mixture", **kwargs)


def test_skip_bad_reaches_the_parts_that_can_skip(tmp_path):
    good = {
        "image": "a.png",
        "conversations": [{"from": "human", "value": "<image>\nHi"}, {"from": "gpt", "value": "x"}],
    }
    bad = {"image": "a.png", "conversations": [{"from": "human", "value": "no answer"}]}
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "c.json").write_text(json.dumps([good, bad, good]))
    llava = {"name": "llava-json", "path": str(tmp_path / "c.json"), "image_root": str(tmp_path)}
    with pytest.raises(ValueError):
        ma.dataset("mixture", parts=[llava, TALKS])
    mix = ma.dataset("mixture", parts=[llava, TALKS], skip_bad=True)
    assert mix.skipped == 1 and len(mix.parts[0]) == 2


def test_a_stage_trains_on_captions_and_conversations_mixed(tmp_path):
    torch.manual_seed(0)
    spec = {"name": "mixture", "parts": [CAPTIONS, TALKS], "weights": [1, 1], "n": 16}
    mix = ma.dataset(**spec)
    lm = {"name": "tiny-llama", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "vocab_size": 300}
    model = ma.VisionLanguageModel(
        vision={"name": "efficientnet-lite0", "image_size": 32}, connector="mlp", lm=lm, text_corpus=list(mix.texts())
    )
    kinds = [mix.locate(i)[0] for i in range(8)]
    assert set(kinds) == {0, 1}  # the first batch holds both kinds of record
    batch = model.collate([mix[i] for i in range(8)])
    labelled = (batch["labels"] != -100).sum(dim=1)
    assert bool((labelled > 0).all())  # every row, caption or conversation, carries next-token labels
    out = model.training_loss(batch, "instruct")
    assert torch.isfinite(out["loss"]) and float(out["answer_tokens"]) == float((batch["labels"][:, 1:] != -100).sum())
    result = ma.train(
        model,
        [{"name": "mix", "objective": "instruct", "data": spec, "steps": 2, "batch_size": 8, "train": ["connector"]}],
        tmp_path,
        progress=False,
    )
    stage = result["stages"][0]
    assert stage["steps"] == 2 and stage["loss"] is not None and torch.isfinite(torch.tensor(stage["loss"]))
