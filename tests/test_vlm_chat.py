"""The terminal chat loop: multi-turn history, commands, and the answers it prints."""

import io

import pytest
import torch
from test_vlm_tiny_parts import CORPUS, images, tiny_cfg

from modalign.cli.chat import chat_main, reply
from modalign.data.records import BadRecord
from modalign.models.vlm import VisionLanguageModel


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = VisionLanguageModel.from_config(tiny_cfg(), text_corpus=CORPUS).eval()
    with torch.no_grad():
        model.lm.lm_head.weight.mul_(8)
    d = tmp_path_factory.mktemp("chat")
    model.save_pretrained(d / "ckpt")
    images(1)[0].save(d / "a.png")
    images(1, seed=9)[0].save(d / "b.png")
    return d, model


def test_chat_keeps_the_history_and_prints_each_answer(saved):
    d, model = saved
    out = io.StringIO()
    msgs = chat_main(
        d / "ckpt",
        d / "a.png",
        max_new_tokens=5,
        stdin=io.StringIO("What color?\nAnd the shape?\n/quit\nnever read\n"),
        stdout=out,
    )
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[0]["content"].startswith("<image>") and "<image>" not in msgs[2]["content"]
    image = images(1)[0]
    first = reply(model, image, msgs[:1], max_new_tokens=5)
    second = reply(model, image, msgs[:3], max_new_tokens=5)  # the second answer sees the first exchange
    assert [msgs[1]["content"], msgs[3]["content"]] == [first, second]
    printed = [line for line in out.getvalue().splitlines() if line.startswith("model> ")]
    assert printed == [f"model> {first}", f"model> {second}"]


def test_reset_and_image_switch_start_over(saved):
    d, _ = saved
    out = io.StringIO()
    msgs = chat_main(
        d / "ckpt",
        d / "a.png",
        max_new_tokens=3,
        stdout=out,
        stdin=io.StringIO(f"hi\n/reset\nhello\n/image {d / 'missing.png'}\n/image {d / 'b.png'}\nQ?\n"),
    )
    assert len(msgs) == 2 and msgs[0]["content"] == "<image>\nQ?"
    text = out.getvalue()
    assert "(conversation reset)" in text and "cannot open image" in text and "(new image" in text
    with pytest.raises(BadRecord, match="nope.png: the file does not exist"):
        chat_main(d / "ckpt", d / "nope.png", stdin=io.StringIO(""), stdout=io.StringIO())


def test_chat_passes_a_repetition_penalty_and_refuses_a_bad_one_up_front(saved):
    d, model = saved
    msgs = chat_main(
        d / "ckpt",
        d / "a.png",
        max_new_tokens=8,
        repetition_penalty=3.0,
        stdin=io.StringIO("What color?\n"),
        stdout=io.StringIO(),
    )
    image = images(1)[0]
    assert msgs[1]["content"] == reply(model, image, msgs[:1], max_new_tokens=8, repetition_penalty=3.0)
    assert msgs[1]["content"] != reply(model, image, msgs[:1], max_new_tokens=8)
    with pytest.raises(ValueError, match="repetition_penalty"):
        chat_main(
            d / "no-such-checkpoint", d / "a.png", repetition_penalty=0.0, stdin=io.StringIO(""), stdout=io.StringIO()
        )
