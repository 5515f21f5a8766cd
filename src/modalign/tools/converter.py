"""The converter route: a fixed pipeline runs every chosen tool on the image and puts their text into the LM's prompt.

The survey's "tool learning" in its simplest form (Visual ChatGPT / Socratic-model style): the modalities are
converted to text before the LM is asked, so the LM never decides anything about tools. Each image's tools run once
however many questions it has; the LM then answers every question in one batch.
"""

from __future__ import annotations

from .base import Inputs, call_tool
from .route import RouteAnswer, ToolRoute

SYSTEM = (
    "You answer questions about an image you cannot see. Tools have looked at the image for you; their results come "
    "with the question. Answer from the results and from what you know."
)


def tool_report(results) -> str:
    return "\n".join(f"[{r.tool}] {r.text}" for r in results)


class ConverterRoute(ToolRoute):
    mode = "converter"

    def __init__(self, lm, tools, max_new_tokens: int = 24, batch_size: int = 8, system: str = SYSTEM):
        super().__init__(lm, tools, max_new_tokens, batch_size)
        self.system = system

    def messages(self, results, question: str) -> list[dict]:
        user = f"Tool results:\n{tool_report(results)}\n\nQuestion: {question}"
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def answer_all(self, inputs: list[Inputs], questions: list[str]) -> list[RouteAnswer]:
        if len(inputs) != len(questions):
            raise ValueError(f"{len(inputs)} inputs but {len(questions)} questions")
        seen: dict[int, list] = {}  # the same image object asked several questions: its tools run once
        all_results = []
        for inp in inputs:
            key = id(inp.image) if inp.image is not None else id(inp)
            if key not in seen:
                seen[key] = [call_tool(t, inp) for t in self.tools.values()]
            all_results.append(seen[key])
        convs = [self.messages(r, q) for r, q in zip(all_results, questions)]
        replies = self.lm.reply(convs, self.max_new_tokens, self.batch_size)
        return [RouteAnswer(a, list(r), c) for a, r, c in zip(replies, all_results, convs)]
