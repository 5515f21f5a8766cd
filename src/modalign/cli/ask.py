"""`modalign ask IMAGE "question" --tools ocr,tagger [--mode converter|agent] [--lm NAME|DIR]`: one question, answered
by a language model through tools, printing every tool call and its result before the answer.

Tools with parameters: `--tool-param labels:model=runs/lit-fashion-mnist/final,labels=[sneaker,sandal,bag]`
(repeatable; the tool is added when `--tools` does not name it). `--audio CLIP.wav` comes with the question for the
`transcribe` tool.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO


def add_ask_parser(subparsers) -> argparse.ArgumentParser:
    from ..tools import TOOLS

    p = subparsers.add_parser(
        "ask", help="answer one question about an image with a language model that uses tools (OCR, a tagger ...)"
    )
    p.add_argument("image", help="an image file")
    p.add_argument("question")
    p.add_argument("--tools", default="ocr,tagger", help=f"comma-separated tool names, of: {', '.join(TOOLS)}")
    p.add_argument(
        "--tool-param",
        action="append",
        default=[],
        metavar="NAME:k=v,...",
        help="a tool's parameters, e.g. labels:model=runs/lit/final,labels=[cat,dog] (repeatable)",
    )
    p.add_argument("--mode", default="converter", choices=["converter", "agent"])
    p.add_argument("--lm", default="smollm2-135m", help="an LM name, a saved modalign VLM or an HF causal-LM folder")
    p.add_argument("--max-calls", type=int, default=3, help="agent mode: tool calls allowed before it must answer")
    p.add_argument("--audio", help="a sound file that comes with the question (for the transcribe tool)")
    p.set_defaults(func=ask_main)
    return p


def tool_specs(names: str, params: list[str]) -> list[tuple[str, dict]]:
    """(name, parameters) per tool, in the order named; `--tool-param` adds parameters (and tools)."""
    from .eval import parse_data

    specs = {n.strip(): {} for n in names.split(",") if n.strip()}
    for item in params:
        comp = parse_data(item)
        specs.setdefault(comp.name, {}).update(comp.params())
    return list(specs.items())


def print_answer(answer, out: TextIO) -> None:
    for c in answer.calls:
        args = " ".join(f"{k}={v}" for k, v in c.arguments.items())
        status = "" if c.ok else " [failed]"
        text = c.text.replace("\n", " | ")
        print(f"-> {c.tool}({args}){status} {c.seconds:.2f} s: {text}", file=out)
    print(f"answer: {answer.answer}", file=out)


def ask_main(args, out: TextIO | None = None, route=None) -> int:
    import torch
    from PIL import Image

    from ..registry import ConfigError
    from ..tools import build_route, build_tool

    out = out or sys.stdout
    torch.set_num_threads(1)
    try:
        image = Image.open(args.image).convert("RGB")
    except OSError as err:
        raise ConfigError(f"cannot open image {args.image}: {err}") from None
    if route is None:
        tools = [build_tool(name, **params) for name, params in tool_specs(args.tools, args.tool_param)]
        extra = {"max_calls": args.max_calls} if args.mode == "agent" else {}
        route = build_route(args.mode, tools, args.lm, **extra)
    print_answer(route.answer(image, args.question, audio=args.audio), out)
    return 0


def add_traces_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "tool-traces",
        help="write synthetic tool-use conversations (converter and agent formats) to teach an LM the tool routes",
    )
    p.add_argument("--out", required=True, help="a .jsonl file (LLaVA format, text only: read it with llava-json)")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=traces_main)
    return p


def traces_main(args) -> int:
    from ..tools.traces import write_traces

    print(f"wrote {write_traces(args.out, args.n, args.seed)} ({args.n} conversations)")
    return 0
