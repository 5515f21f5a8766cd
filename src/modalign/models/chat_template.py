"""The chat format of modalign's from-scratch language models: role markers and the Jinja template stored with them.

One conversation renders as
    <s><|system|>...<|end|><|user|><image>\nQ<|end|><|assistant|>A<|end|>...
Every role marker is a special token of the tokenizer, so a rendered conversation splits cleanly at turn
boundaries and `<|end|>` doubles as the stop token of a generated answer. LLaVA-format conversations
(`{"from": "human" | "gpt" | "system", "value": ...}`) are mapped to `{"role", "content"}` messages here.
"""

from __future__ import annotations

IMAGE_TOKEN = "<image>"
AUDIO_TOKEN = "<audio>"  # added to a tokenizer only when the model has an audio part (lm.add_placeholder_tokens)
VIDEO_TOKEN = "<video>"
PAD_TOKEN = "<pad>"
BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
SYSTEM_MARKER = "<|system|>"
USER_MARKER = "<|user|>"
ASSISTANT_MARKER = "<|assistant|>"
END_OF_TURN = "<|end|>"
ROLE_MARKERS = (SYSTEM_MARKER, USER_MARKER, ASSISTANT_MARKER, END_OF_TURN)
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IMAGE_TOKEN) + ROLE_MARKERS

# Rendered by transformers' `apply_chat_template`; the template must be prefix-stable (rendering the first k
# messages gives a prefix of rendering all of them) because answer labels are located by character offsets.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    + SYSTEM_MARKER
    + "{{ message['content'] }}"
    + END_OF_TURN
    + "{% elif message['role'] == 'user' %}"
    + USER_MARKER
    + "{{ message['content'] }}"
    + END_OF_TURN
    + "{% elif message['role'] == 'assistant' %}"
    + ASSISTANT_MARKER
    + "{{ message['content'] }}"
    + END_OF_TURN
    + "{% else %}{{ raise_exception('unknown role ' + message['role'] + '; use system, user or assistant') }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}" + ASSISTANT_MARKER + "{% endif %}"
)

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def to_messages(conversations: list[dict]) -> list[dict]:
    """LLaVA `conversations` (or already role/content messages) -> `[{"role", "content"}]`."""
    messages = []
    for turn in conversations:
        if "role" in turn and "content" in turn:
            messages.append({"role": turn["role"], "content": turn["content"]})
            continue
        who = turn.get("from")
        if who not in _ROLES or "value" not in turn:
            raise ValueError(
                f"conversation turn {turn!r}: expected {{'from': 'human'|'gpt'|'system', 'value': str}} (LLaVA format)"
            )
        messages.append({"role": _ROLES[who], "content": turn["value"]})
    return messages


def user_turn(prompt: str, with_image: bool = True, markers: tuple[str, ...] = ()) -> list[dict]:
    """A single user message asking `prompt` about one image (the image marker goes first, LLaVA style); each of
    `markers` (`<video>`, `<audio>`) the prompt does not already hold goes before it too, after the image."""
    lead = [m for m in markers if m not in prompt]
    if lead:
        prompt = "\n".join(lead) + "\n" + prompt
    if with_image and IMAGE_TOKEN not in prompt:
        prompt = IMAGE_TOKEN + "\n" + prompt
    return [{"role": "user", "content": prompt}]
