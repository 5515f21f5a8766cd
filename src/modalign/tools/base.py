"""The one interface every tool has: a name, a description, typed arguments, a text result.

A tool reads the inputs of the question it serves (`Inputs`: the image, an audio file) and the arguments of a call,
and returns text. `call_tool` is how every route runs one: it checks the arguments against the tool's declared
`Arg`s, runs the tool under its time limit, and turns every failure (bad arguments, an exception, a time-out) into
a `ToolResult` whose text says what went wrong, so a language model reading it can try again; nothing raises.
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list}


@dataclass(frozen=True)
class Arg:
    """One argument of a tool: JSON-schema type name, what it means, its default (None: required when `required`)."""

    type: str
    description: str
    default: Any = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"argument type {self.type!r} is not one of {sorted(_TYPES)}")


@dataclass
class Inputs:
    """What a question comes with, for the tools to read: an image (PIL), an audio file path."""

    image: Any = None
    audio: str | None = None


@dataclass
class ToolResult:
    """One call: the tool, its arguments, the text it gave back (or the error), whether it worked, seconds taken."""

    tool: str
    arguments: dict
    text: str
    ok: bool = True
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "text": self.text,
            "ok": self.ok,
            "seconds": self.seconds,
        }


class Tool:
    """Subclasses set `name`, `description`, `args` and implement `run(inputs, **arguments) -> str`."""

    name: str = ""
    description: str = ""
    args: dict[str, Arg] = {}  # noqa: RUF012 - read-only class data, replaced (never mutated) by subclasses
    timeout: float = 30.0  # seconds a call may take before its result is given up on

    def __init__(self, timeout: float | None = None):
        if timeout is not None:
            if not timeout > 0:
                raise ValueError(f"a tool's timeout must be > 0 seconds, got {timeout}")
            self.timeout = float(timeout)

    def run(self, inputs: Inputs, **arguments) -> str:  # pragma: no cover - the interface
        raise NotImplementedError

    def schema(self) -> dict:
        """The tool as a JSON-schema style dict: what an LM's system prompt lists."""
        props = {}
        for k, a in self.args.items():
            p = {"type": a.type, "description": a.description}
            if a.default is not None:
                p["default"] = a.default
            props[k] = p
        required = [k for k, a in self.args.items() if a.required]
        return {"name": self.name, "description": self.description, "arguments": props, "required": required}

    def check(self, arguments: dict) -> dict:
        """The arguments with defaults filled in; ValueError naming the problem when they do not fit."""
        if not isinstance(arguments, dict):
            raise ValueError(f"arguments must be a JSON object, got {json.dumps(arguments)[:60]}")
        unknown = sorted(set(arguments) - set(self.args))
        if unknown:
            known = ", ".join(self.args) or "none"
            raise ValueError(f"{self.name} takes no argument {', '.join(unknown)} (its arguments: {known})")
        out = {}
        for k, a in self.args.items():
            if k not in arguments or arguments[k] is None:
                if a.required:
                    raise ValueError(f"{self.name} needs the argument {k!r} ({a.description})")
                out[k] = a.default
                continue
            v = arguments[k]
            bad_bool = isinstance(v, bool) and a.type != "boolean"
            if not isinstance(v, _TYPES[a.type]) or bad_bool:
                raise ValueError(f"{self.name}: {k} must be a {a.type}, got {json.dumps(v)[:40]}")
            if (a.minimum is not None and v < a.minimum) or (a.maximum is not None and v > a.maximum):
                raise ValueError(f"{self.name}: {k} must be between {a.minimum} and {a.maximum}, got {v}")
            out[k] = v
        return out


_POOL_LOCK = threading.Lock()
_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _pool() -> concurrent.futures.ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            # a few workers: a timed-out call keeps its thread until it returns (Python cannot stop a thread), and
            # the next calls must not queue behind it
            _POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="modalign-tool")
        return _POOL


def call_tool(tool: Tool, inputs: Inputs, arguments: dict | None = None, timeout: float | None = None) -> ToolResult:
    """Run one call of `tool` and return its result; errors, bad arguments and time-outs come back as text."""
    arguments = {} if arguments is None else arguments
    start = time.perf_counter()

    def done(text: str, ok: bool) -> ToolResult:
        shown = arguments if isinstance(arguments, dict) else {"(invalid)": str(arguments)}
        return ToolResult(tool.name, shown, text, ok, round(time.perf_counter() - start, 3))

    try:
        checked = tool.check(arguments)
    except ValueError as err:
        return done(f"error: {err}", False)
    limit = tool.timeout if timeout is None else timeout
    future = _pool().submit(tool.run, inputs, **checked)
    try:
        text = future.result(timeout=limit)
    except concurrent.futures.TimeoutError:
        return done(f"error: {tool.name} took longer than its {limit:g} s limit and was given up", False)
    except Exception as err:  # a tool's failure is the model's information, not the program's crash
        return done(f"error: {tool.name} failed: {type(err).__name__}: {err}", False)
    if not isinstance(text, str):
        return done(f"error: {tool.name} returned {type(text).__name__}, not text", False)
    return done(text, True)
