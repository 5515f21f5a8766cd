"""Opening untrusted images: a pixel limit checked before decoding, EXIF orientation, 16-bit modes scaled right.

Every image modalign reads from a file or from bytes goes through `open_image` (readers, chat, explain), and an
image some other code already opened (a web demo's upload) through `prepare_image`. Either returns an 8-bit RGB
picture the right way up, or raises `BadRecord` naming where the image came from:
  - over the pixel limit (default 40 Mpx; env MODALIGN_MAX_IMAGE_PIXELS or `set_max_image_pixels`): refused from
    the header alone, so a 48 KB PNG that claims 20000 x 20000 costs nothing; PIL's own decompression-bomb error
    is turned into the same BadRecord;
  - undecodable or truncated: decoded fully here, so the failure is named at read time, not in a collate;
  - 16-bit grey (modes I;16*, and I as PNG / TIFF load it) is scaled 65535 -> 255, where PIL's convert("RGB")
    clips every value above 255 to white; float grey (F) in [0, 1] is scaled to 0..255;
  - EXIF orientation is applied (ImageOps.exif_transpose), so a phone photo is seen as its owner sees it.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .records import BadRecord

DEFAULT_MAX_PIXELS = 40_000_000
ENV_MAX_PIXELS = "MODALIGN_MAX_IMAGE_PIXELS"
_limit: int | None = None  # set_max_image_pixels; None: the environment variable, else the default


def set_max_image_pixels(n: int | None) -> None:
    """The largest width x height accepted; None goes back to MODALIGN_MAX_IMAGE_PIXELS or the 40 Mpx default."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n <= 0):
        raise ValueError(f"the image pixel limit must be a positive integer, got {n!r}")
    global _limit
    _limit = n


def max_image_pixels() -> int:
    if _limit is not None:
        return _limit
    raw = os.environ.get(ENV_MAX_PIXELS)
    if raw is None or raw == "":
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{ENV_MAX_PIXELS}={raw!r} is not a positive integer number of pixels")
    return value


class ImageTooLarge(BadRecord):
    """An image over the pixel limit; `size` and `limit` let a caller word its own message (a web page's)."""

    def __init__(self, message: str, size: tuple[int, int], limit: int):
        super().__init__(message)
        self.size, self.limit = size, limit


def check_size(size: tuple[int, int], where: str, max_pixels: int | None = None) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise BadRecord(f"{where}: image has no pixels ({w} x {h})")
    limit = max_pixels if max_pixels is not None else max_image_pixels()
    if w * h > limit:
        raise ImageTooLarge(
            f"{where}: image is {w} x {h} = {w * h:,} pixels, over the limit of {limit:,} "
            f"(raise it with {ENV_MAX_PIXELS} or modalign.data.images.set_max_image_pixels if it is genuine)",
            (w, h),
            limit,
        )


def _grey16_to_8(im: Image.Image) -> Image.Image:
    a = np.asarray(im, dtype=np.float64)  # I;16* read as uint16, I as int32
    a = np.clip(a, 0, 65535) / 257.0  # 65535 -> 255, the same scaling as a 16-bit PNG reader's
    return Image.fromarray(np.round(a).astype(np.uint8), mode="L")


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB, with 16-bit and float grey scaled to 0..255 instead of clipped (PIL's convert clips them)."""
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I;16") or im.mode == "I":
        im = _grey16_to_8(im)
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if a.size and np.nanmax(a) <= 1.0 else 1.0  # [0, 1] floats are fractions of white
        im = Image.fromarray(np.round(np.clip(np.nan_to_num(a) * scale, 0, 255)).astype(np.uint8), mode="L")
    return im.convert("RGB")


def prepare_image(im: Image.Image, where: str = "image", max_pixels: int | None = None) -> Image.Image:
    """An already opened image checked and normalised as `open_image` does (for a web demo's upload, a user's
    own dataset): size limit, EXIF orientation, 8-bit RGB. Raises BadRecord naming `where`."""
    if not isinstance(im, Image.Image):
        raise BadRecord(f"{where}: expected a PIL image, got {type(im).__name__}")
    check_size(im.size, where, max_pixels)
    try:
        # always a new image (a copy when there is no orientation tag), so it outlives the file it was read from
        im = ImageOps.exif_transpose(im)
        return to_rgb(im)
    except (OSError, SyntaxError, ValueError) as err:
        raise BadRecord(f"{where}: image cannot be decoded ({type(err).__name__}: {err})") from err


def open_image(
    source: bytes | str | Path,
    where: str | None = None,
    formats: tuple[str, ...] | None = None,
    max_pixels: int | None = None,
) -> Image.Image:
    """Decode an image file or its bytes into an 8-bit RGB picture, the right way up (see the module docstring).

    `formats`: the only Pillow formats tried (e.g. ("PNG", "JPEG")), so no other plug-in parses a hostile file;
    `max_pixels`: this call's limit instead of the global one (ImageTooLarge, a BadRecord, when over it)."""
    where = where or (str(source) if not isinstance(source, bytes) else "image bytes")
    if not isinstance(source, bytes) and not Path(source).is_file():
        named = "the file" if str(source) in where else f"image file {source}"
        raise BadRecord(f"{where}: {named} does not exist")
    try:
        with warnings.catch_warnings():
            # the size check below is ours; PIL's warning for 89+ Mpx would only repeat it
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=formats) as im:
                check_size(im.size, where, max_pixels)  # the header is read, no pixel is decoded yet
                im.load()
                return prepare_image(im, where, max_pixels)
    except Image.DecompressionBombError as err:
        raise BadRecord(f"{where}: image refused as a decompression bomb ({err})") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as err:
        if isinstance(err, BadRecord):
            raise
        raise BadRecord(f"{where}: image cannot be decoded ({type(err).__name__}: {err})") from err
