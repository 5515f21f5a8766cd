"""The tool routes with a scripted stub LM: calls, bad calls, unknown tools, tool errors, time-outs, the call limit."""

import json
import threading

import pytest
from PIL import Image

from modalign.tools.agent import ANSWER_NOW, AgentRoute
from modalign.tools.base import Arg, Inputs, Tool
from modalign.tools.converter import ConverterRoute


class ScriptedLM:
    """Replies from a script per conversation (keyed by the question); records every conversation it was shown."""

    name = "scripted"

    def __init__(self, scripts: dict[str, list[str]]):
        self.scripts = {q: list(r) for q, r in scripts.items()}
        self.seen: list[list[dict]] = []
        self.batches: list[int] = []

    def reply(self, conversations, max_new_tokens=48, batch_size=8):
        self.batches.append(len(conversations))
        out = []
        for conv in conversations:
            self.seen.append([dict(m) for m in conv])
            question = next(m["content"] for m in conv if m["role"] == "user")
            question = question.split("Question: ")[-1]
            out.append(self.scripts[question].pop(0))
        return out


class Echo(Tool):
    name = "echo"
    description = "Says the image's width."
    args = {"times": Arg("integer", "how often", 1, False, 1, 3)}  # noqa: RUF012

    def run(self, inputs, times=1):
        return " ".join([str(inputs.image.size[0])] * times)


class Broken(Tool):
    name = "broken"
    description = "Always fails."

    def run(self, inputs):
        raise RuntimeError("disk on fire")


class Slow(Tool):
    name = "slow"
    description = "Takes too long."
    timeout = 0.2

    def __init__(self):
        super().__init__()
        self.release, self.finished = threading.Event(), threading.Event()

    def run(self, inputs):
        self.release.wait(30)  # held until the test lets it go: far past its time limit
        self.finished.set()
        return "late"


IMG = Image.new("RGB", (7, 5))


def _agent(scripts, max_calls=3):
    lm = ScriptedLM(scripts)
    return AgentRoute(lm, [Echo(), Broken(), Slow()], max_calls=max_calls), lm


def _user_messages(answer):
    return [m["content"] for m in answer.messages if m["role"] == "user"]


def test_a_call_runs_and_its_result_comes_back_before_the_answer():
    agent, _ = _agent({"q": ['{"tool": "echo", "arguments": {"times": 2}}', "7"]})
    a = agent.answer(IMG, "q")
    assert a.answer == "7"
    assert [(c.tool, c.arguments, c.text, c.ok) for c in a.calls] == [("echo", {"times": 2}, "7 7", True)]
    assert _user_messages(a)[-1] == "Result of echo: 7 7"
    assert "echo: Says the image's width. Arguments: times (integer, default 1)." in a.messages[0]["content"]


def test_malformed_unknown_bad_arguments_and_failures_go_back_as_messages():
    agent, _ = _agent(
        {
            "q": [
                '{"tool": "echo", "arguments": {"times": 2',  # cut off
                '{"name": "echo"}',  # no "tool" key
                '{"tool": "zoom"}',  # no such tool
                "I give up",
            ],
            "r": ['{"tool": "echo", "arguments": {"times": 9}}', '{"tool": "broken"}', '{"tool": "echo"}', "x"],
        }
    )
    a, b = agent.answer_all([Inputs(IMG), Inputs(IMG)], ["q", "r"])
    msgs = _user_messages(a)
    assert msgs[1].startswith("Error: the tool call is not valid JSON")
    assert msgs[2].startswith('Error: a tool call is a JSON object with a "tool" key')
    assert msgs[3].startswith("Error: there is no tool 'zoom'; the tools are: echo, broken, slow.")
    assert ANSWER_NOW in msgs[3] and a.answer == "I give up"
    msgs = _user_messages(b)
    assert "times must be between 1 and 3, got 9" in msgs[1]
    assert "broken failed: RuntimeError: disk on fire" in msgs[2]
    assert msgs[3] == f"Result of echo: 7\n{ANSWER_NOW}"
    assert [c.ok for c in b.calls] == [False, False, True]


def test_a_tool_past_its_time_limit_is_reported_and_the_loop_goes_on():
    agent, _ = _agent({"q": ['{"tool": "slow"}', "done"]})
    slow = agent.tools["slow"]
    try:
        a = agent.answer(IMG, "q")
        assert not slow.finished.is_set()  # the answer came while the tool was still running
    finally:
        slow.release.set()
    assert a.answer == "done"
    assert "slow took longer than its 0.2 s limit" in a.calls[0].text and not a.calls[0].ok


def test_the_call_limit_ends_the_loop_with_the_next_reply_as_the_answer():
    call = '{"tool": "echo"}'
    agent, lm = _agent({"q": [call, call, call, call, call]}, max_calls=2)
    a = agent.answer(IMG, "q")
    assert len(a.calls) == 2
    assert a.answer == call  # told to answer, it called again: that reply is what it answered
    assert len(lm.scripts["q"]) == 2  # three replies used: call, call (+ told to answer), the final one
    none, _ = _agent({"q": [call, "5"]}, max_calls=0)
    b = none.answer(IMG, "q")
    assert b.calls == [] and _user_messages(b)[-1] == ANSWER_NOW and b.answer == "5"


def test_conversations_advance_in_lock_step_one_batch_per_turn():
    agent, lm = _agent({"a": ["plain answer"], "b": ['{"tool": "echo"}', "7"], "c": ['{"tool": "echo"}', "7"]})
    out = agent.generate([IMG, IMG, IMG], ["a", "b", "c"])
    assert out == ["plain answer", "7", "7"]
    assert lm.batches == [3, 2]
    assert [len(a.calls) for a in agent.last_answers] == [0, 1, 1]


def test_converter_runs_every_tool_once_per_image_and_prompts_with_their_text():
    lm = ScriptedLM({"q1": ["seven"], "q2": ["no"]})
    calls = []

    class Counting(Echo):
        def run(self, inputs, times=1):
            calls.append(1)
            return super().run(inputs, times)

    route = ConverterRoute(lm, [Counting(), Broken()])
    out = route.generate([IMG, IMG], ["q1", "q2"])
    assert out == ["seven", "no"] and len(calls) == 1  # the same image object: its tools ran once
    user = lm.seen[0][1]["content"]
    assert "[echo] 7" in user and "[broken] error: broken failed: RuntimeError: disk on fire" in user
    assert user.endswith("Question: q1")


def test_routes_refuse_sampling_and_duplicate_tool_names():
    from modalign.registry import ConfigError

    agent, _ = _agent({})
    with pytest.raises(ConfigError, match="greedily"):
        agent.generate([IMG], ["q"], do_sample=True)
    with pytest.raises(ConfigError, match="unique"):
        ConverterRoute(ScriptedLM({}), [Echo(), Echo()])


def test_trace_is_json_serialisable():
    agent, _ = _agent({"q": ['{"tool": "echo"}', "7"]})
    a = agent.answer(IMG, "q")
    assert json.loads(json.dumps([c.as_dict() for c in a.calls]))[0]["text"] == "7"


def test_answer_many_answers_questions_about_one_image_as_a_vlm_does():
    lm = ScriptedLM({"q1": ["a"], "q2": ["b"]})
    calls = []

    class Counting(Echo):
        def run(self, inputs, times=1):
            calls.append(1)
            return super().run(inputs, times)

    route = ConverterRoute(lm, [Counting()])
    route.record = []
    assert route.answer_many(IMG, ["q1", "q2"], max_new_tokens=4, batch_size=2) == ["a", "b"]
    assert len(calls) == 1 and len(route.record) == 2
