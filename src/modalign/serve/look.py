"""The Look tab: for an answer of the conversation, where in the image the model looked when it wrote a chosen word.

The map is `explain(model, image, answer, spans=[the word], prompt=its question)` (explain/api.py): attention
rollout through the LM and connector for prefix fusion, gradient x input otherwise, drawn over the image with the
project's overlay. The answer is explained after its own question alone, without the turns before it.
"""

from __future__ import annotations

import gradio as gr

from ..explain.api import METHODS, default_method, explain
from ..explain.overlay import overlay, view_box
from ..explain.targets import word_spans
from ..models.chat_template import IMAGE_TOKEN
from .safety import Refused, shown_in_page


def answer_choices(messages: list[dict]) -> list[tuple[str, int]]:
    """(label, message index) of every assistant turn, the latest last."""
    out = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            text = m["content"] or "(empty answer)"
            out.append((f"{len(out) + 1}. {text[:70]}", i))
    return out


def word_choices(answer: str) -> list[tuple[str, int]]:
    """(label, word number) of every word of the answer; a repeated word is told apart by its place."""
    spans = word_spans(answer)
    words = [answer[a:b] for a, b in spans]
    return [(w if words.count(w) == 1 else f"{w} (word {k + 1})", k) for k, w in enumerate(words)]


def look(model, image, messages: list[dict], turn: int, word: int, method: str | None):
    """(overlay image, a sentence on where the map peaks) for word number `word` of the answer at `turn`."""
    if image is None or not messages:
        raise Refused("Chat first: upload an image and ask a question in the Chat tab")
    if not 0 < turn < len(messages) or messages[turn]["role"] != "assistant":
        raise Refused("Choose one of the answers")
    answer = messages[turn]["content"]
    spans = word_spans(answer)
    if not spans:
        raise Refused("That answer has no words to explain")
    if not 0 <= word < len(spans):
        raise Refused("Choose a word of the answer")
    question = messages[turn - 1]["content"].replace(IMAGE_TOKEN, "").strip()
    method = method or default_method(model)
    (att,) = explain(model, image, answer, method=method, spans=[spans[word]], prompt=question)
    picture = overlay(image, att.map, box=view_box(model.vision, image.size), min_side=320, label=att.label)
    h, w = att.map.shape
    x, y = att.point
    text = (
        f"**{att.label}** ({method}): the map peaks at patch row {att.peak[0]}, column {att.peak[1]} of the "
        f"{h} x {w} grid, around pixel ({x:.0f}, {y:.0f}) of the image."
    )
    return picture, text


def build_look_tab(chat: dict) -> None:
    """Components and events; `chat` is what the Chat tab returned (model choice, image and conversation states)."""
    gr.Markdown("Pick an answer from the chat and one of its words: the map shows which parts of the image drove it.")
    with gr.Row():
        answer_dd = gr.Dropdown([], label="Answer", elem_id="look-answer", interactive=True)
        word_dd = gr.Dropdown([], label="Word", elem_id="look-word", interactive=True)
        first = next(iter(chat["by_label"].values()), None)
        method = gr.Radio(
            list(METHODS), value=default_method(first.model) if first else None, label="Method", elem_id="look-method"
        )
    run = gr.Button("Show where the model looked", variant="primary", elem_id="look-run")
    with gr.Row():
        picture = gr.Image(label="Attribution map", interactive=False, elem_id="look-map", height=340)
        peak = gr.Markdown("", elem_id="look-peak")

    def refresh_answers(messages):
        choices = answer_choices(messages or [])
        latest = choices[-1][1] if choices else None
        words = word_choices(messages[latest]["content"]) if choices else []
        return (
            gr.update(choices=choices, value=latest),
            gr.update(choices=words, value=words[0][1] if words else None),
        )

    def refresh_words(turn, messages):
        ok = turn is not None and 0 <= turn < len(messages or [])
        words = word_choices(messages[turn]["content"]) if ok else []
        return gr.update(choices=words, value=words[0][1] if words else None)

    @shown_in_page
    def on_run(label, image, messages, turn, word, method_):
        served = chat["by_label"].get(label)
        if served is None:
            raise Refused("No vision-language model is being served (give one on the command line)")
        if turn is None or word is None:
            raise Refused("Chat first, then choose an answer and a word")
        return look(served.model, image, messages, int(turn), int(word), method_)

    def on_model(label):
        served = chat["by_label"].get(label)
        return default_method(served.model) if served else None

    chat["model"].change(on_model, [chat["model"]], [method], api_visibility="private")
    chat["messages"].change(refresh_answers, [chat["messages"]], [answer_dd, word_dd], api_visibility="private")
    answer_dd.input(refresh_words, [answer_dd, chat["messages"]], [word_dd], api_visibility="private")
    run.click(
        on_run,
        [chat["model"], chat["image"], chat["messages"], answer_dd, word_dd, method],
        [picture, peak],
        concurrency_id="vlm",
        concurrency_limit=1,
        api_visibility="private",
    )
