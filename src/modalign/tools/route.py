"""What the converter and agent routes share: tools by name, answers with their tool calls, a VLM-like `generate`.

A route answers questions about images it never shows its LM: the tools turn each image into text. `generate(images,
prompts)` has the signature of VisionLanguageModel.generate (greedy only), so the eval suites that read generations
(vqa, pope in generate mode, caption) run a route as they run a model, and `answer_many(image, questions)` as
VisionLanguageModel's (the suites group questions about one image through it); `last_answers` keeps the calls behind the
latest answers, for a command line to print; `record`, when set to a list, keeps them all (a comparison counts the
calls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import ConfigError
from .base import Inputs, Tool, ToolResult


@dataclass
class RouteAnswer:
    """One answer and how it came about: the tool calls made, and the conversation the LM saw."""

    answer: str
    calls: list[ToolResult] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)


def describe_tool(tool: Tool) -> str:
    """One line per tool for an LM's instructions: name, what it does, its arguments with types and defaults."""
    args = ", ".join(
        f"{k} ({a.type}{', default ' + str(a.default) if a.default is not None else ''})" for k, a in tool.args.items()
    )
    return f"- {tool.name}: {tool.description} Arguments: {args or 'none'}."


class ToolRoute:
    mode = "route"

    def __init__(self, lm, tools: list[Tool], max_new_tokens: int = 24, batch_size: int = 8):
        if not tools:
            raise ConfigError("a tool route needs at least one tool")
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ConfigError(f"tool names must be unique, got {names}")
        self.lm, self.tools = lm, {t.name: t for t in tools}
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.last_answers: list[RouteAnswer] = []
        self.record: list[RouteAnswer] | None = None  # set to a list to keep every answer generate() gives

    def answer_all(self, inputs: list[Inputs], questions: list[str]) -> list[RouteAnswer]:  # pragma: no cover
        raise NotImplementedError

    def answer(self, image, question: str, audio: str | None = None) -> RouteAnswer:
        return self.answer_all([Inputs(image=image, audio=audio)], [question])[0]

    def generate(
        self, images, prompts=None, max_new_tokens: int | None = None, do_sample: bool = False, num_beams: int = 1, **_
    ) -> list[str]:
        """One answer per (image, prompt), as VisionLanguageModel.generate gives them (greedy; no beams)."""
        if do_sample or num_beams != 1:
            raise ConfigError(f"the {self.mode} route decodes greedily: no sampling, no beam search")
        if prompts is None:
            prompts = ["Describe the image."] * len(images)
        if isinstance(prompts, str):
            prompts = [prompts] * len(images)
        return self._answers([Inputs(image=im) for im in images], list(prompts))

    def answer_many(self, image, questions: list[str], max_new_tokens: int | None = None, **_) -> list[str]:
        """Answers to every question about one image, as VisionLanguageModel.answer_many gives them (the tools run
        on the image once)."""
        image_inputs = Inputs(image=image)
        return self._answers([image_inputs] * len(questions), list(questions))

    def _answers(self, inputs: list[Inputs], questions: list[str]) -> list[str]:
        self.last_answers = self.answer_all(inputs, questions)
        if self.record is not None:
            self.record.extend(self.last_answers)
        return [a.answer for a in self.last_answers]

    def eval(self):
        return self

    def describe(self) -> dict:
        """What a result's settings record about the route."""
        return {"mode": self.mode, "lm": getattr(self.lm, "name", type(self.lm).__name__), "tools": list(self.tools)}
