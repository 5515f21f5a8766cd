"""What the demo accepts from a page: uploads bounded in bytes and pixels and decoded here, short texts, nothing else.

An upload is decoded by `open_untrusted_image`: the header is read first and the pixel count checked before the
full decode (a 17 KB PNG can claim 12000 x 12000 pixels and cost a gigabyte to decode), and only the formats in
`IMAGE_FORMATS` are tried, so no other Pillow plug-in ever parses a hostile file. Every refusal is an `Refused`
whose message is written for the page. The page never names a file on the server: uploads arrive as files in
gradio's own upload folder, images to search come from the folder given on the command line.

`UPLOAD_KINDS` is the seam for more modalities: a kind names the file suffixes the page offers and the function that
turns an uploaded file into what a model takes; an audio clip joins it as `"audio"` with its own decoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # about 6300 x 6300: far above what a tower looks at, far below a decompression bomb
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # Pillow's names; no other plug-in ever sees an upload
FORMAT_NAMES = "PNG, JPEG, WebP, BMP or GIF"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
MAX_TEXT_CHARS = 1000
MAX_LABELS = 64
MAX_LABEL_CHARS = 200


class Refused(ValueError):
    """An input the demo will not take; the message says why, for the person at the page."""


def open_untrusted_image(path: str | Path, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS):
    """An RGB image from a file nobody vouches for, or `Refused`: at most `max_bytes` long, one of IMAGE_FORMATS,
    at most `max_pixels` pixels (checked from the header before anything is decoded), and fully decodable.

    Decoded by the library's shared guard (`data.images.open_image`: the same limit logic, EXIF orientation and
    16-bit scaling as training and evaluation); this function adds the byte bound and words refusals for the page."""
    from ..data.images import ImageTooLarge, open_image
    from ..data.records import BadRecord

    path = Path(path)
    name = path.name
    try:
        size = os.path.getsize(path)
    except OSError:
        raise Refused(f"{name}: the upload could not be read; upload it again") from None
    if size > max_bytes:
        raise Refused(f"{name} is {size / 2**20:.1f} MB; uploads are limited to {max_bytes / 2**20:.0f} MB")
    try:
        return open_image(path, name, formats=IMAGE_FORMATS, max_pixels=max_pixels)
    except ImageTooLarge as err:
        w, h = err.size
        limit = f"{max_pixels / 1e6:g} million" if max_pixels >= 1e6 else f"{max_pixels:,}"
        raise Refused(f"{name} is {w} x {h} pixels; images are limited to {limit} pixels") from None
    except BadRecord:
        raise Refused(f"Could not read {name} as an image: the file is damaged or not a {FORMAT_NAMES} image") from None


def clean_text(text: str | None, what: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """`text` stripped, or `Refused` when it is empty or longer than `max_chars`."""
    text = (text or "").strip()
    if not text:
        raise Refused(f"Type {what} first")
    if len(text) > max_chars:
        raise Refused(f"{what[0].upper() + what[1:]} is {len(text)} characters long; the limit is {max_chars}")
    return text


def parse_labels(text: str | None, max_labels: int = MAX_LABELS, max_chars: int = MAX_LABEL_CHARS) -> list[str]:
    """Labels typed one per line or separated by commas; duplicates dropped, order kept."""
    raw = (text or "").replace("\n", ",").split(",")
    labels = list(dict.fromkeys(s.strip() for s in raw if s.strip()))
    if not labels:
        raise Refused("Type the labels to choose from, separated by commas or one per line")
    if len(labels) > max_labels:
        raise Refused(f"{len(labels)} labels given; the limit is {max_labels}")
    long = [s for s in labels if len(s) > max_chars]
    if long:
        raise Refused(f"The label {long[0][:40]!r}... is longer than {max_chars} characters")
    return labels


@dataclass(frozen=True)
class UploadKind:
    """A kind of upload: the file suffixes offered in the page and the decoder of an uploaded file."""

    suffixes: tuple[str, ...]
    decode: Callable[[str | Path], object]


UPLOAD_KINDS: dict[str, UploadKind] = {"image": UploadKind(IMAGE_SUFFIXES, open_untrusted_image)}


def upload_folder() -> Path:
    """Where gradio keeps the files uploaded through the page (GRADIO_TEMP_DIR, or the system temp dir's gradio/)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()).resolve()


def decode_upload(kind: str, path: str | Path | None, root: str | Path | None = None):
    """The decoded upload of `kind`, or `Refused` when there is none, it is not a file uploaded through the page
    (inside `root`, by default gradio's upload folder: gradio checks this too), or it is not acceptable."""
    if not path:
        raise Refused(f"Upload an {kind} first")
    root = Path(root).resolve() if root is not None else upload_folder()
    if root not in Path(path).resolve().parents:
        raise Refused("Only files uploaded through the page are read")
    return UPLOAD_KINDS[kind].decode(path)


def shown_in_page(fn):
    """Wrap an event handler (function or generator) so that a refusal, a configuration mistake or a model's own
    ValueError reaches the page as an error message, without a traceback in the server log."""
    import functools
    import inspect

    import gradio as gr

    from ..registry import ConfigError

    caught = (Refused, ConfigError, ValueError)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except caught as err:
                raise gr.Error(str(err), print_exception=False) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except caught as err:
            raise gr.Error(str(err), print_exception=False) from None

    return wrapper
