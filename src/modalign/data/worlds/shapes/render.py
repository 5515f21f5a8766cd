"""Draw a shapes-world scene graph into a PIL RGB image.

Shapes are filled polygons without anti-aliasing, so every object pixel has exactly its colour's RGB value (tests
sample centre pixels against the graph). Outlines are given in unit-box coordinates and scaled onto the object's
box; every outline touches all four box edges, so the drawn pixels span the box exactly.
Backgrounds are greys (plain, per-pixel noise, or a low-frequency stripe texture) that no object colour is near.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .vocab import COLORS

BACKGROUND_GREY = 128


def _star() -> list[tuple[float, float]]:
    pts = []
    for k in range(10):
        r = 1.0 if k % 2 == 0 else 0.42
        a = math.radians(-90 + 36 * k)
        pts.append((r * math.cos(a), r * math.sin(a)))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in pts]


def _regular(n: int, start_deg: float) -> list[tuple[float, float]]:
    pts = [
        (math.cos(math.radians(start_deg + 360 * k / n)), math.sin(math.radians(start_deg + 360 * k / n)))
        for k in range(n)
    ]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return [((x - min(xs)) / (max(xs) - min(xs)), (y - min(ys)) / (max(ys) - min(ys))) for x, y in pts]


_T = 1 / 3  # arm thickness of the cross
OUTLINES = {
    "triangle": [(0.5, 0.0), (1.0, 1.0), (0.0, 1.0)],
    "diamond": [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)],
    "hexagon": _regular(6, 0.0),
    "pentagon": _regular(5, -90.0),
    "star": _star(),
    "cross": [
        (_T, 0),
        (1 - _T, 0),
        (1 - _T, _T),
        (1, _T),
        (1, 1 - _T),
        (1 - _T, 1 - _T),
        (1 - _T, 1),
        (_T, 1),
        (_T, 1 - _T),
        (0, 1 - _T),
        (0, _T),
        (_T, _T),
    ],
}


def draw_object(draw: ImageDraw.ImageDraw, obj: dict, fill=None) -> None:
    x0, y0, x1, y1 = obj["box"]
    w, h = x1 - 1 - x0, y1 - 1 - y0  # PIL boxes are end-inclusive
    color = fill if fill is not None else COLORS[obj["color"]]
    shape = obj["shape"]
    if shape == "circle":
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=color)
    elif shape == "square":
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=color)
    else:
        draw.polygon([(x0 + u * w, y0 + v * h) for u, v in OUTLINES[shape]], fill=color)


def background_array(scene: dict) -> np.ndarray:
    """[S, S, 3] uint8 background for the scene (deterministic from its noise_seed)."""
    s = scene["image_size"]
    kind = scene.get("background", "plain")
    if kind == "plain":
        return np.full((s, s, 3), BACKGROUND_GREY, dtype=np.uint8)
    rng = np.random.default_rng(scene["noise_seed"])
    if kind == "noise":
        # Grey noise (same value in all channels) in 98..158: never close to a saturated object colour.
        grey = rng.integers(98, 159, size=(s, s), dtype=np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if kind == "texture":
        period = rng.uniform(0.08, 0.25) * s
        angle = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        phase = (xx * math.cos(angle) + yy * math.sin(angle)) * (2 * math.pi / period)
        grey = (BACKGROUND_GREY + 28 * np.sin(phase)).astype(np.uint8)  # [S, S]
        return np.repeat(grey[:, :, None], 3, axis=2)
    raise ValueError(f"unknown background {kind!r}; use plain, noise or texture")


def render(scene: dict, objects: list[dict] | None = None) -> Image.Image:
    """The scene as a PIL RGB image; `objects` draws a subset (used to check boxes one object at a time)."""
    image = Image.fromarray(background_array(scene), "RGB")
    draw = ImageDraw.Draw(image)
    for obj in scene["objects"] if objects is None else objects:
        draw_object(draw, obj)
    return image


def object_mask(scene: dict, index: int) -> np.ndarray:
    """[S, S] bool: the pixels object `index` would cover if drawn alone (its full, unoccluded extent)."""
    s = scene["image_size"]
    canvas = Image.new("L", (s, s), 0)
    draw_object(ImageDraw.Draw(canvas), scene["objects"][index], fill=255)
    return np.asarray(canvas) > 0
