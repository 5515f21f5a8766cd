"""The tool interface: argument checks, error texts, the call parser."""

import pytest

from modalign.tools import TOOLS
from modalign.tools.base import Arg, Inputs, Tool, call_tool
from modalign.tools.calls import Call, CallError, format_call, parse_call


class Adder(Tool):
    name = "add"
    description = "Adds."
    args = {  # noqa: RUF012
        "a": Arg("integer", "first", required=True),
        "b": Arg("number", "second", 1.5, False, 0, 10),
        "words": Arg("array", "a list"),
        "flag": Arg("boolean", "a flag", False),
    }

    def run(self, inputs, a, b, words, flag):
        return str(a + b)


def test_arguments_are_checked_and_defaults_filled():
    t = Adder()
    assert t.check({"a": 2}) == {"a": 2, "b": 1.5, "words": None, "flag": False}
    for bad, msg in [
        ({}, "needs the argument 'a'"),
        ({"a": "2"}, "a must be a integer"),
        ({"a": True}, "a must be a integer"),
        ({"a": 1, "b": 11}, "between 0 and 10"),
        ({"a": 1, "c": 1}, "takes no argument c"),
        ([1], "must be a JSON object"),
    ]:
        with pytest.raises(ValueError, match=msg):
            t.check(bad)
    r = call_tool(t, Inputs(), {"a": 2, "b": 3})
    assert (r.ok, r.text) == (True, "5")
    r = call_tool(t, Inputs(), {"a": "x"})
    assert not r.ok and r.text.startswith("error: add: a must be a integer")


def test_a_tool_returning_no_text_is_an_error():
    class Bad(Adder):
        def run(self, inputs, **kw):
            return 3

    r = call_tool(Bad(), Inputs(), {"a": 1})
    assert not r.ok and "returned int, not text" in r.text


def test_schema_lists_arguments_and_required():
    s = Adder().schema()
    assert (
        s["name"] == "add"
        and s["required"] == ["a"]
        and s["arguments"]["b"]
        == {
            "type": "number",
            "description": "second",
            "default": 1.5,
        }
    )
    with pytest.raises(ValueError, match="argument type"):
        Arg("int", "x")
    with pytest.raises(ValueError, match="timeout"):
        Adder(timeout=0)


def test_parse_call():
    assert parse_call("The answer is cat.") is None
    assert parse_call('{"tool": "ocr", "arguments": {"min_score": 0.3}}') == Call("ocr", {"min_score": 0.3})
    assert parse_call('<tool_call>\n{"tool": "tagger"}\n</tool_call>') == Call("tagger", {})
    assert parse_call('Let me look. {"tool": "ocr", "arguments": null} ok') == Call("ocr", {})
    for bad, msg in [
        ('{"tool": "ocr"', "not valid JSON"),
        ('{"name": "ocr"}', '"tool" key'),
        ('{"tool": 3}', "name as a string"),
        ('{"tool": "ocr", "arguments": [1]}', "must be a JSON object"),
        ("[1, 2] {", "not valid JSON"),
    ]:
        with pytest.raises(CallError, match=msg):
            parse_call(bad)
    assert parse_call(format_call("tagger", {"top_k": 3})) == Call("tagger", {"top_k": 3})


def test_registry_names():
    assert {"ocr", "tagger", "labels", "captioner", "transcribe"} <= set(TOOLS)
    for name in ("ocr", "tagger", "transcribe"):
        tool = TOOLS[name]()
        assert tool.name == name and tool.description and tool.timeout > 0


def test_transcribe_without_audio_is_an_error_text():
    r = call_tool(TOOLS["transcribe"](), Inputs())
    assert not r.ok and "no audio" in r.text
