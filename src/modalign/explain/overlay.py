"""From a patch-grid map to pictures and points: upsample onto the image, colour it, blend, save as PNG, and find
where a map peaks in image pixels.

Patch cell (r, c) of an h x w grid covers the part of the image the tower sees (`view_box`): the whole image for a
square resize, the centre crop for CLIP-style shortest-edge-then-crop processing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw


def view_box(tower, image_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the original image that the tower's preprocessing keeps."""
    w, h = image_size
    proc = getattr(tower, "processing", None)
    if proc is None or getattr(proc, "shortest_edge", None) is None:
        return 0.0, 0.0, float(w), float(h)
    scale = proc.shortest_edge / min(w, h)  # the resize, then a centre crop of height x width
    cw, ch = proc.width / scale, proc.height / scale
    return (w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2


def peak_cell(attr_map: np.ndarray) -> tuple[int, int]:
    """(row, col) of the largest value (the first one on ties)."""
    attr_map = np.asarray(attr_map)
    if attr_map.ndim != 2 or attr_map.size == 0:
        raise ValueError(f"an attribution map is a non-empty [h, w] grid, got shape {attr_map.shape}")
    r, c = np.unravel_index(int(np.argmax(attr_map)), attr_map.shape)
    return int(r), int(c)


def peak_point(attr_map: np.ndarray, box=(0.0, 0.0, 1.0, 1.0)) -> tuple[float, float]:
    """(x, y) in image pixels of the centre of the peak cell; `box` is the region the grid covers (`view_box`)."""
    h, w = np.asarray(attr_map).shape
    r, c = peak_cell(attr_map)
    x0, y0, x1, y1 = box
    return x0 + (c + 0.5) * (x1 - x0) / w, y0 + (r + 0.5) * (y1 - y0) / h


def normalise(attr_map: np.ndarray) -> np.ndarray:
    """Positive evidence scaled to [0, 1] (all zeros if nothing is positive)."""
    m = np.clip(np.asarray(attr_map, dtype=np.float32), 0, None)
    top = float(m.max()) if m.size else 0.0
    return m / top if top > 0 else m


def upsample(attr_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear [h, w] -> [height, width]."""
    t = torch.as_tensor(np.asarray(attr_map, dtype=np.float32))[None, None]  # [1, 1, h, w]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(
    image: Image.Image,
    attr_map: np.ndarray,
    box=None,
    alpha: float = 0.5,
    min_side: int = 256,
    label: str | None = None,
) -> Image.Image:
    """The image (enlarged to at least `min_side` pixels) with the map in a jet colour scale blended on top."""
    from matplotlib import colormaps

    image = image.convert("RGB")
    box = box or (0, 0, image.width, image.height)
    zoom = max(1, -(-min_side // min(image.size)))
    big = image.resize((image.width * zoom, image.height * zoom), Image.NEAREST)
    x0, y0, x1, y1 = (int(round(v * zoom)) for v in box)
    heat = upsample(normalise(attr_map), max(1, y1 - y0), max(1, x1 - x0))  # [H', W']
    rgb = (colormaps["jet"](heat)[..., :3] * 255).astype(np.uint8)  # [H', W', 3]
    base = np.asarray(big, dtype=np.float32)
    region = base[y0:y1, x0:x1]
    base[y0:y1, x0:x1] = (1 - alpha) * region + alpha * rgb[: region.shape[0], : region.shape[1]]
    out = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    if label:
        draw = ImageDraw.Draw(out)
        draw.rectangle((0, 0, 8 + 7 * len(label), 16), fill=(0, 0, 0))
        draw.text((4, 2), label, fill=(255, 255, 255))
    return out


def save_overlay(
    image: Image.Image, attr_map: np.ndarray, path: str | Path, box=None, label: str | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    overlay(image, attr_map, box=box, label=label).save(path, format="PNG")
    return path
