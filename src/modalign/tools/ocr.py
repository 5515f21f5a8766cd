"""`ocr`: the text in an image, read by RapidOCR (PP-OCRv4 detection + recognition, ONNX models inside the wheel).

Settings (measured on scikit-image's page.png, 2 busy cores): the library's default scales an image so its SHORT side
is 736 px, which blows a wide strip of text up to thousands of pixels (10 s for a 400x60 line); `det_limit_type="max"`
with 960 px caps the long side instead (0.3 s for that line, spaces between words kept) and one ONNX thread avoids
oversubscribing the cores. Lines are returned top to bottom, each with its recognition confidence.
"""

from __future__ import annotations

import threading

import numpy as np

from ..registry import ConfigError
from .base import Arg, Inputs, Tool

_INSTALL = "the ocr tool needs rapidocr-onnxruntime: pip install 'modalign[tools]'"


class OCRTool(Tool):
    """The text in the image, line by line, top to bottom (RapidOCR, PP-OCRv4)."""

    name = "ocr"
    description = "Reads the text written in the image (signs, pages, labels) and returns it line by line."
    args = {  # noqa: RUF012
        "min_score": Arg("number", "lines recognised with less confidence than this are left out", 0.5, False, 0, 1),
    }
    timeout = 60.0

    def __init__(self, timeout: float | None = None, max_side: int = 960, threads: int = 1):
        super().__init__(timeout)
        self.max_side, self.threads = max_side, threads
        self._engine = None
        self._lock = threading.Lock()  # one engine, built once, used by one call at a time

    def engine(self):
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as err:
                raise ConfigError(f"{_INSTALL} ({err})") from None
            self._engine = RapidOCR(
                det_limit_type="max", det_limit_side_len=self.max_side, intra_op_num_threads=self.threads
            )
        return self._engine

    def read(self, image) -> list[tuple[str, float, float]]:
        """[(text, score, top y)] of every detected line, top to bottom."""
        with self._lock:
            result, _ = self.engine()(np.asarray(image.convert("RGB")))
        lines = [(str(text), float(score), float(min(p[1] for p in box))) for box, text, score in result or []]
        return sorted(lines, key=lambda t: t[2])

    def run(self, inputs: Inputs, min_score: float = 0.5) -> str:
        if inputs.image is None:
            raise ValueError("there is no image to read")
        lines = [(t, s) for t, s, _ in self.read(inputs.image) if s >= min_score]
        if not lines:
            return "no text found"
        return "\n".join(t for t, _ in lines)
