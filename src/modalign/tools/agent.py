"""The agent route: the LM decides which tools to call, in JSON, and a bounded loop runs them and feeds results back.

Protocol (calls.py): the system prompt lists the tools; a reply that is a JSON object `{"tool": ..., "arguments":
{...}}` is a call, anything else is the answer. Each call's result goes back as a user message `Result of TOOL: ...`
(SmolLM2's template accepts any role, but its training saw user turns, not tool turns). Unknown tools, malformed
calls, bad arguments, tool errors and time-outs are sent back the same way, as text, and the loop goes on; after
`max_calls` calls the LM is told to answer now, and whatever it says next is the answer. Conversations advance in
lock-step so every LM turn of a batch of questions is one batched generation.
"""

from __future__ import annotations

from .base import Inputs, ToolResult, call_tool
from .calls import CallError, format_call, parse_call
from .route import RouteAnswer, ToolRoute, describe_tool


def system_prompt(tools) -> str:
    lines = "\n".join(describe_tool(t) for t in tools)
    return (
        "You answer questions about an image you cannot see. Tools can look at it for you:\n"
        f"{lines}\n"
        f"To call a tool, reply with only a JSON object, for example {format_call(tools[0].name)}. "
        "Its result comes back in the next message. When you know the answer, reply with the answer only."
    )


def result_message(result: ToolResult) -> str:
    return f"Result of {result.tool}: {result.text}"


ANSWER_NOW = "No more tool calls. Answer the question now."


class AgentRoute(ToolRoute):
    mode = "agent"

    def __init__(self, lm, tools, max_calls: int = 3, max_new_tokens: int = 48, batch_size: int = 8):
        super().__init__(lm, tools, max_new_tokens, batch_size)
        if max_calls < 0:
            raise ValueError(f"max_calls must be >= 0, got {max_calls}")
        self.max_calls = max_calls
        self.system = system_prompt(list(self.tools.values()))

    def start(self, question: str) -> list[dict]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": question}]

    def step(self, reply: str, inputs: Inputs, calls: list[ToolResult]) -> str | None:
        """What goes back to the LM after `reply` (a result or an error), or None when the reply is the answer."""
        try:
            call = parse_call(reply)
        except CallError as err:
            calls.append(ToolResult("(malformed)", {}, f"error: {err}", False))
            return f"Error: {err}"
        if call is None:
            return None
        if len(calls) >= self.max_calls:  # over the budget: not run, and the LM is told to answer
            return ANSWER_NOW
        tool = self.tools.get(call.tool)
        if tool is None:
            known = ", ".join(self.tools)
            calls.append(ToolResult(call.tool, call.arguments, f"error: unknown tool (tools: {known})", False))
            return f"Error: there is no tool {call.tool!r}; the tools are: {known}."
        result = call_tool(tool, inputs, call.arguments)
        calls.append(result)
        return result_message(result)

    def answer_all(self, inputs: list[Inputs], questions: list[str]) -> list[RouteAnswer]:
        if len(inputs) != len(questions):
            raise ValueError(f"{len(inputs)} inputs but {len(questions)} questions")
        convs = [self.start(q) for q in questions]
        calls: list[list[ToolResult]] = [[] for _ in questions]
        answers = [""] * len(questions)
        told = [False] * len(questions)  # told to answer now: the next reply is the answer, whatever it is
        active = list(range(len(questions)))
        while active:
            replies = self.lm.reply([convs[i] for i in active], self.max_new_tokens, self.batch_size)
            still = []
            for i, reply in zip(active, replies):
                convs[i].append({"role": "assistant", "content": reply})
                back = None if told[i] else self.step(reply, inputs[i], calls[i])
                if back is None:
                    answers[i] = reply
                    continue
                if len(calls[i]) >= self.max_calls:
                    told[i] = True
                    if back != ANSWER_NOW:
                        back = f"{back}\n{ANSWER_NOW}"
                convs[i].append({"role": "user", "content": back})
                still.append(i)
            active = still
        return [RouteAnswer(a, c, m) for a, c, m in zip(answers, calls, convs)]
