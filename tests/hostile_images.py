"""Image files a hostile or careless user supplies, built byte by byte (tests/test_bad_inputs.py, test_chat_pty.py).

`bomb_png(w, h)` is a real decompression bomb: a valid 1-bit grey PNG whose pixels are all zero, so a 20000 x 20000
picture compresses to ~50 KB and would take 400 MB (as 8-bit grey, more as RGB) to decode. The others are the
images PIL's default conversion gets wrong: 16-bit grey (saturates to white) and an EXIF-rotated photo.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte, then 1 bit per pixel
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def png(image: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kw)
    return buf.getvalue()


def grey16_gradient(width: int = 256, height: int = 4) -> bytes:
    """A full 0..65535 horizontal gradient as a 16-bit grey PNG (mean 127.5 once scaled to 8 bits)."""
    row = np.round(np.linspace(0, 65535, width)).astype(np.uint16)
    return png(Image.fromarray(np.tile(row, (height, 1))))


def exif_rotated_jpeg() -> bytes:
    """Stored 40 wide x 20 high, left half red, with EXIF orientation 6 (the camera was turned: rotate 90 cw),
    so it is seen 20 wide x 40 high with red on top."""
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()
