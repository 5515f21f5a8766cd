"""Layer 7, tool learning: tools that turn an image (or audio) into text, and two ways for a language model to use them.

`TOOLS[name](**params) -> Tool`, each with a name, a description, typed arguments and a text result (base.py):
- `ocr`: the text in the image (RapidOCR, PP-OCRv4);
- `tagger`: ImageNet-1k labels with probabilities (EfficientNet-Lite0's own head);
- `labels`: a trained modalign dual encoder as a zero-shot tagger over a label list (`model=DIR, labels=[...]`);
- `captioner`: a trained modalign vision-language model describing the image (`model=DIR`);
- `transcribe`: speech in the question's audio (faster-whisper, Whisper tiny.en; optional packages).
Routes (how an LM uses them): `converter.ConverterRoute` runs fixed tools and puts their text in the prompt;
`agent.AgentRoute` lets the LM call tools in JSON, in a bounded loop. Both answer `generate(images, prompts)` as a
vision-language model does, so every eval suite that reads generations runs them.
"""

from .base import Arg, Inputs, Tool, ToolResult, call_tool
from .captioner import build_captioner
from .imagenet_tagger import ImageNetTagger
from .label_tagger import build_label_tagger
from .ocr import OCRTool
from .transcribe import Transcriber

TOOLS: dict = {
    "ocr": OCRTool,
    "tagger": ImageNetTagger,
    "labels": build_label_tagger,
    "captioner": build_captioner,
    "transcribe": Transcriber,
}

__all__ = ["TOOLS", "Arg", "Inputs", "Tool", "ToolResult", "build_route", "build_tool", "call_tool"]


def build_tool(name: str, **params) -> Tool:
    """A tool by registry name with its parameters: `build_tool("labels", model="runs/lit/final", labels=[...])`."""
    from ..registry import build

    return build(TOOLS, "tool", name, **params)


def build_route(mode: str, tools, lm="smollm2-135m", **params):
    """A converter or agent route over `tools` (Tool objects or names) driving `lm` (a name, directory or ChatLM)."""
    from ..registry import ConfigError
    from .agent import AgentRoute
    from .chat_lm import ChatLM
    from .converter import ConverterRoute

    routes = {"converter": ConverterRoute, "agent": AgentRoute}
    if mode not in routes:
        raise ConfigError(f"unknown tool route {mode!r}; choose one of: {', '.join(routes)}")
    tools = [build_tool(t) if isinstance(t, str) else t for t in tools]
    chat = lm if hasattr(lm, "reply") else ChatLM.from_spec(str(lm))
    return routes[mode](chat, tools, **params)
