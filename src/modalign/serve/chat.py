"""The Chat tab: upload an image, ask questions turn after turn, watch the answer stream in token by token.

The conversation is kept as the model's own messages (the first user turn carries the `<image>` marker) and rendered
with its chat template for every answer, as `modalign chat` does; the page shows the same turns without the marker.
Decoding is greedy or sampled (temperature, top-k), with a token budget and transformers' repetition penalty.
"""

from __future__ import annotations

import gradio as gr
from PIL import Image

from ..models.chat_template import IMAGE_TOKEN
from .runs import ServedModel
from .safety import UPLOAD_KINDS, Refused, clean_text, decode_upload, shown_in_page

MAX_NEW_TOKENS = 256
MAX_TOP_K = 200
TEMPERATURES = (0.1, 2.0)
PENALTIES = (1.0, 2.0)
EMPTY_ANSWER = "(the model ended its answer without writing anything)"


def user_message(question: str, first: bool) -> dict:
    """The model's user turn: the image marker goes before the first question (LLaVA style), never typed by hand."""
    question = question.replace(IMAGE_TOKEN, "").strip()
    return {"role": "user", "content": IMAGE_TOKEN + "\n" + question if first else question}


def shown_messages(messages: list[dict]) -> list[dict]:
    """The conversation as the page shows it: no image markers."""
    return [{"role": m["role"], "content": m["content"].replace(IMAGE_TOKEN, "").strip()} for m in messages]


def enlarged(image, min_side: int = 256):
    """A small image scaled up (nearest pixel) for the preview, so a 64-pixel picture is not a thumbnail."""
    zoom = -(-min_side // max(1, min(image.size)))
    return image if zoom <= 1 else image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)


def check_fits(model, text: str, max_new_tokens: int) -> None:
    """Refuse a conversation that, with its answer, would not fit the LM's context."""
    n_text = len(model.tokenizer(text, add_special_tokens=False)["input_ids"])
    need = n_text - 1 + model.prompts.tokens_per_image + max_new_tokens
    if need > model.prompts.max_length:
        raise Refused(
            f"The conversation is too long for this model ({need} of {model.prompts.max_length} positions with "
            f"the answer): press Clear to start over, or ask for fewer tokens"
        )


def answer_stream(model, image, messages: list[dict], decoding: dict):
    """The next assistant turn, as the text so far after each token (`VisionLanguageModel.stream`)."""
    max_new = int(_within(decoding.get("max_new_tokens", 64), "Max new tokens", 1, MAX_NEW_TOKENS))
    temperature = _within(decoding.get("temperature", 1.0), "Temperature", *TEMPERATURES)
    top_k = int(_within(decoding.get("top_k") or 0, "Top-k", 0, MAX_TOP_K))
    penalty = _within(decoding.get("repetition_penalty", 1.0), "Repetition penalty", *PENALTIES)
    text = model.prompts.render(messages, add_generation_prompt=True)
    check_fits(model, text, max_new)
    sampling = decoding.get("mode") == "sampling"
    yield from model.stream(
        image,
        text,
        max_new_tokens=max_new,
        do_sample=sampling,
        temperature=temperature,
        top_k=top_k if sampling and top_k > 0 else None,
        repetition_penalty=penalty,
    )


def _within(value, name: str, low: float, high: float) -> float:
    """A decoding setting from the page, checked against the range its slider offers (a request may send any)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise Refused(f"{name} must be a number") from None
    if not low <= value <= high:
        raise Refused(f"{name} must be between {low:g} and {high:g}")
    return value


def build_chat_tab(vlms: list[ServedModel]) -> dict:
    """The tab's components; returns what the Look tab reads (model choice, image, conversation)."""
    by_label = {s.label: s for s in vlms}
    first = vlms[0] if vlms else None
    with gr.Row():
        model_dd = gr.Dropdown(
            [s.label for s in vlms], value=first.label if first else None, label="Vision-language model",
            elem_id="chat-model", interactive=len(vlms) > 1, scale=1,
        )  # fmt: skip
    with gr.Accordion("About this model", open=True):
        card = gr.Markdown(first.card if first else "No vision-language model was given.", elem_id="chat-card")
    image_state = gr.State(None)
    messages_state = gr.State([])
    with gr.Row():
        with gr.Column(scale=1):
            # one upload per kind the models take; an audio clip would get its own gr.File from UPLOAD_KINDS
            upload = gr.File(
                label="Image", file_types=list(UPLOAD_KINDS["image"].suffixes), type="filepath", elem_id="chat-upload"
            )
            status = gr.Markdown("", elem_id="chat-status")
            preview = gr.Image(label="The image the model sees", interactive=False, elem_id="chat-preview", height=260)
        with gr.Column(scale=2):
            chatbot = gr.Chatbot(label="Conversation", elem_id="chat", height=360, feedback_options=None)
            question = gr.Textbox(label="Question", placeholder="Ask about the image", elem_id="question", max_lines=4)
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                clear = gr.Button("Clear conversation", elem_id="clear")
            with gr.Accordion("Decoding", open=False):
                mode = gr.Radio(["greedy", "sampling"], value="greedy", label="Decoding", elem_id="decoding")
                temperature = gr.Slider(*TEMPERATURES, value=0.7, step=0.05, label="Temperature (sampling)")
                top_k = gr.Slider(0, MAX_TOP_K, value=40, step=1, label="Top-k (sampling; 0 = all tokens)")
                max_new = gr.Slider(1, MAX_NEW_TOKENS, value=64, step=1, label="Max new tokens", elem_id="max-new")
                penalty = gr.Slider(*PENALTIES, value=1.0, step=0.05, label="Repetition penalty (1 = none)")

    def on_upload(path):
        try:
            image = decode_upload("image", path)
        except Refused as err:
            return None, None, None, [], [], f"**{err}**"
        return gr.skip(), enlarged(image), image, [], [], f"{image.width} x {image.height} pixels; ask away."

    def on_clear_upload():
        return None, None, [], [], ""

    @shown_in_page
    def on_send(label, q, image, messages, shown, mode_, temp, k, max_new_, pen):
        served = by_label.get(label)
        if served is None:
            raise Refused("No vision-language model is being served (give one on the command line)")
        if image is None:
            raise Refused("Upload an image first")
        q = clean_text(q, "a question")
        messages = list(messages) + [user_message(q, first=not messages)]
        decoding = dict(mode=mode_, temperature=temp, top_k=k, max_new_tokens=max_new_, repetition_penalty=pen)
        shown = shown_messages(messages) + [{"role": "assistant", "content": ""}]
        answer = ""
        yield shown, gr.skip(), ""
        for answer in answer_stream(served.model, image, messages, decoding):
            shown[-1] = {"role": "assistant", "content": answer}
            yield shown, gr.skip(), gr.skip()
        if not answer:  # the model ended its turn at once: say so rather than show an empty bubble
            shown[-1] = {"role": "assistant", "content": EMPTY_ANSWER}
        yield shown, messages + [{"role": "assistant", "content": answer}], gr.skip()

    def on_model(label):
        served = by_label.get(label)
        return (served.card if served else ""), [], []

    outs = [preview, image_state, messages_state, chatbot, status]
    upload.upload(on_upload, [upload], [upload, *outs], api_visibility="private")
    upload.clear(on_clear_upload, None, outs, api_visibility="private")
    inputs = [model_dd, question, image_state, messages_state, chatbot, mode, temperature, top_k, max_new, penalty]
    for trigger in (send.click, question.submit):
        trigger(
            on_send, inputs, [chatbot, messages_state, question],
            concurrency_id="vlm", concurrency_limit=1, api_visibility="private",
        )  # fmt: skip
    clear.click(lambda: ([], []), None, [messages_state, chatbot], api_visibility="private")
    model_dd.change(on_model, [model_dd], [card, messages_state, chatbot], api_visibility="private")
    return {"model": model_dd, "image": image_state, "messages": messages_state, "by_label": by_label}
