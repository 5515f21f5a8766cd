"""The routes' chat LM (batched, left-padded greedy replies) and `modalign ask` printing the tool calls."""

import argparse
import io

from PIL import Image

from modalign.models.lm import build_lm
from modalign.tools.base import ToolResult
from modalign.tools.chat_lm import ChatLM
from modalign.tools.route import RouteAnswer


def test_a_batched_reply_equals_the_reply_alone():
    import torch

    torch.manual_seed(0)
    corpus = ["what is in the image", "a red circle", "tool results", "the answer is yes"] * 20
    model, tok = build_lm("tiny-llama", {"hidden_size": 32, "num_layers": 1, "num_heads": 2}, text_corpus=corpus)
    lm = ChatLM(model, tok)
    short = [{"role": "user", "content": "red"}]
    long = [{"role": "system", "content": "tool results"}, {"role": "user", "content": "what is in the image"}]
    both = lm.reply([short, long], max_new_tokens=6)
    assert both == [lm.reply([short], max_new_tokens=6)[0], lm.reply([long], max_new_tokens=6)[0]]
    assert all(isinstance(r, str) for r in both)


class FixedRoute:
    def answer(self, image, question, audio=None):
        assert image.size == (6, 4) and question == "What does it say?"
        calls = [
            ToolResult("ocr", {}, "Hello\nworld", True, 0.25),
            ToolResult("zoom", {"x": 1}, "error: unknown tool (tools: ocr)", False, 0.0),
        ]
        return RouteAnswer("hello world", calls)


def test_ask_prints_every_call_then_the_answer(tmp_path):
    from modalign.cli.ask import ask_main, tool_specs

    Image.new("RGB", (6, 4)).save(tmp_path / "x.png")
    args = argparse.Namespace(image=str(tmp_path / "x.png"), question="What does it say?", audio=None)
    out = io.StringIO()
    assert ask_main(args, out=out, route=FixedRoute()) == 0
    assert out.getvalue().splitlines() == [
        "-> ocr() 0.25 s: Hello | world",
        "-> zoom(x=1) [failed] 0.00 s: error: unknown tool (tools: ocr)",
        "answer: hello world",
    ]
    assert tool_specs("ocr,tagger", ["labels:model=runs/x,labels=[a,b]", "ocr:timeout=5"]) == [
        ("ocr", {"timeout": 5}),
        ("tagger", {}),
        ("labels", {"model": "runs/x", "labels": ["a", "b"]}),
    ]


def test_ask_parser_defaults():
    from modalign.cli import build_parser

    args = build_parser().parse_args(["ask", "img.png", "Q?"])
    assert (args.tools, args.mode, args.lm, args.max_calls) == ("ocr,tagger", "converter", "smollm2-135m", 3)
    args = build_parser().parse_args(["ask", "img.png", "Q?", "--mode", "agent", "--tools", "ocr"])
    assert args.mode == "agent"


def test_a_saved_vlm_with_lora_is_a_chat_lm_with_the_lora_merged(tmp_path):
    import test_vlm_tiny_parts  # noqa: F401  (registers the tiny vision tower)
    import torch
    from test_vlm_tiny_parts import tiny_cfg

    from modalign.models import build_model

    torch.manual_seed(0)
    corpus = ["what is in the image", "a red circle", "tool results", "yes", "no"] * 10
    vlm = build_model(tiny_cfg(), text_corpus=corpus)
    vlm.enable_lora({"r": 2})
    with torch.no_grad():
        for n, p in vlm.lm.named_parameters():
            if "lora_B" in n:
                p.normal_()  # adapters that change the output, so merging them is visible
    conv = [{"role": "user", "content": "what is in the image"}]
    expected = ChatLM(vlm.lm, vlm.tokenizer).reply([conv], max_new_tokens=5)
    vlm.save_pretrained(tmp_path / "m")
    lm = ChatLM.from_spec(str(tmp_path / "m"))
    assert not hasattr(lm.model, "peft_config")  # merged into plain weights
    assert lm.reply([conv], max_new_tokens=5) == expected
