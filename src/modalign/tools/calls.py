"""Reading a tool call out of an LM's reply: a JSON object `{"tool": NAME, "arguments": {...}}`.

SmolLM2-135M-Instruct's chat template has no tool-call convention of its own (it renders any role as
`<|im_start|>ROLE ... <|im_end|>`), so the agent asks for a bare JSON object. A reply with no `{` is an answer; a
reply that opens a JSON object is a call, and one that does not parse into `{"tool": str, "arguments": object}` is a
malformed call whose error is sent back to the LM. Text around the object (a `<tool_call>` tag, a code fence, a
sentence before it) is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


class CallError(ValueError):
    """A reply that tries to call a tool but cannot be read as a call; the message says what to fix."""


@dataclass
class Call:
    tool: str
    arguments: dict = field(default_factory=dict)


def parse_call(reply: str) -> Call | None:
    """The call in `reply`, None when the reply is an answer; CallError when it is a malformed call."""
    start = reply.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(reply[start:])
    except json.JSONDecodeError as err:
        raise CallError(f"the tool call is not valid JSON ({err.msg} at character {err.pos})") from None
    if not isinstance(obj, dict) or "tool" not in obj:
        raise CallError('a tool call is a JSON object with a "tool" key, e.g. {"tool": "ocr", "arguments": {}}')
    if not isinstance(obj["tool"], str):
        raise CallError('"tool" must be the tool\'s name as a string')
    args = obj.get("arguments", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise CallError('"arguments" must be a JSON object, e.g. {"top_k": 3}')
    return Call(obj["tool"], args)


def format_call(tool: str, arguments: dict | None = None) -> str:
    """The exact text of a call, as the agent's instructions and its training traces write it."""
    return json.dumps({"tool": tool, "arguments": arguments or {}})
