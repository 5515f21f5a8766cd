"""`modalign chat CHECKPOINT --image PATH`: talk about one image in the terminal, keeping the multi-turn history.

Each line read is a user turn; the first turn carries the image. The whole conversation is re-rendered with the
model's chat template for every answer, so the model sees what it said before. Commands: `/reset` starts over
with the same image, `/image PATH` switches image (and starts over), `/quit` or end of input leaves. An `<image>`
typed in a line is dropped (the chat places the one image itself); an image that cannot be used is refused with
the reason, and the conversation goes on.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from PIL import Image

from ..data.images import open_image
from ..data.records import BadRecord
from ..models.chat_template import IMAGE_TOKEN
from ..registry import ConfigError


def _open_image(path: str | Path) -> Image.Image:
    """The image checked as every reader checks one (pixel limit, decodable, EXIF, 16-bit): BadRecord if not."""
    return open_image(Path(path), f"image {path}")


def reply(
    model,
    image: Image.Image,
    messages: list[dict],
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    repetition_penalty: float = 1.0,
) -> str:
    """The assistant's next turn for a conversation about `image` (messages: [{"role", "content"}])."""
    text = model.prompts.render(messages, add_generation_prompt=True)
    return model.complete(
        [image],
        [text],
        max_new_tokens=max_new_tokens,
        do_sample=do_sample,
        temperature=temperature,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
    )[0]


def chat_main(
    checkpoint: str | Path,
    image_path: str | Path,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    model=None,
    repetition_penalty: float = 1.0,
) -> list[dict]:
    """Run the loop until /quit or end of input; returns the final conversation (for tests and logs)."""
    from ..models import load_model
    from ..models.vlm_inference import check_repetition_penalty

    check_repetition_penalty(repetition_penalty)  # before loading a checkpoint or reading a line

    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    image = _open_image(image_path)  # an unusable image fails before the weights load
    model = model if model is not None else load_model(checkpoint)
    if not hasattr(model, "complete"):
        raise ConfigError(f"{checkpoint} is not a generative model (chat needs a `kind: vlm` checkpoint)")
    model.eval()
    messages: list[dict] = []
    interactive = stdin.isatty()
    print(f"chatting about {image_path} (/reset, /image PATH, /quit)", file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line == "/reset":
            messages = []
            print("(conversation reset)", file=stdout)
            continue
        if line.startswith("/image "):
            try:
                image = _open_image(line[len("/image ") :].strip())
            except BadRecord as err:
                print(f"(cannot open image: {err})", file=stdout)
                continue
            messages = []
            print("(new image, conversation reset)", file=stdout)
            continue
        # The one image goes before the first question; a marker typed by the user would ask for a second image.
        text = line.replace(IMAGE_TOKEN, "").strip()
        if not text:
            print(
                f"(type a question; {IMAGE_TOKEN} is placed by the chat itself, /image PATH switches image)",
                file=stdout,
            )
            continue
        content = text if messages else IMAGE_TOKEN + "\n" + text
        messages.append({"role": "user", "content": content})
        answer = reply(model, image, messages, max_new_tokens, do_sample, temperature, top_k, repetition_penalty)
        messages.append({"role": "assistant", "content": answer})
        print(f"model> {answer}", file=stdout, flush=True)
    return messages
