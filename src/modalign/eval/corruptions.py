"""Image corruptions at five severities (after ImageNet-C, Hendrycks & Dietterich 2019), for robustness curves.

`corrupt(image, name, severity, seed)` is a pure function of its arguments: PIL image in, a new PIL image out, the
same output for the same seed. Severity 0 is the image itself; 1..5 follow ImageNet-C's parameters where it has the
corruption (noise std, JPEG quality), with sizes taken relative to the image so that a 28 px garment and a 640 px photo
are hurt alike (blur sigma and occluder side are fractions of the shorter side):
- gaussian_noise: add N(0, s^2) per pixel on [0, 1], s = .08 .12 .18 .26 .38;
- blur: Gaussian blur, sigma = 1 2 3 4 6 px per 224 px of the shorter side (ImageNet-C's sigmas at 224 px);
- jpeg: re-encode at quality 25 18 15 10 7;
- brightness: add .1 .2 .3 .4 .5 to every channel on [0, 1], clipped;
- occlusion: a mid-grey square covering 10 20 30 40 50 % of the area, at a seeded random place.
`CorruptedDataset` applies one to the image(s) of every item of a dataset; `modalign eval --corrupt NAME:SEVERITY`
runs any suite on it and records the corruption in the result's settings.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

SEVERITIES = (1, 2, 3, 4, 5)
_NOISE = (0.08, 0.12, 0.18, 0.26, 0.38)
_BLUR_AT_224 = (1, 2, 3, 4, 6)
_JPEG = (25, 18, 15, 10, 7)
_BRIGHT = (0.1, 0.2, 0.3, 0.4, 0.5)
_OCCLUDE = (0.1, 0.2, 0.3, 0.4, 0.5)


def _as_float(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # [H, W, 3]


def _to_image(x: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8))


def gaussian_noise(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    x = _as_float(image)
    return _to_image(x + rng.normal(0.0, _NOISE[severity - 1], size=x.shape))


def blur(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    del rng
    sigma = _BLUR_AT_224[severity - 1] * min(image.size) / 224
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius=sigma))


def jpeg(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    del rng
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=_JPEG[severity - 1])
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def brightness(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    del rng
    return _to_image(_as_float(image) + _BRIGHT[severity - 1])


def occlusion(image: Image.Image, severity: int, rng: np.random.Generator) -> Image.Image:
    x = _as_float(image).copy()
    h, w = x.shape[:2]
    side = max(1, round(float(np.sqrt(_OCCLUDE[severity - 1] * h * w))))
    sh, sw = min(side, h), min(side, w)
    top, left = int(rng.integers(0, h - sh + 1)), int(rng.integers(0, w - sw + 1))
    x[top : top + sh, left : left + sw] = 0.5
    return _to_image(x)


CORRUPTIONS = {
    "gaussian_noise": gaussian_noise,
    "blur": blur,
    "jpeg": jpeg,
    "brightness": brightness,
    "occlusion": occlusion,
}


def parse_corruption(spec: str) -> tuple[str, int]:
    """`"gaussian_noise:3"` -> ("gaussian_noise", 3); ValueError naming the choices otherwise."""
    name, _, sev = str(spec).partition(":")
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
    try:
        severity = int(sev)
    except ValueError:
        raise ValueError(f"corruption {spec!r}: give a severity 0..5 after the colon, e.g. {name}:3") from None
    if not 0 <= severity <= 5:
        raise ValueError(f"corruption severity must be 0..5 (0 = clean), got {severity}")
    return name, severity


def corrupt(image: Image.Image, name: str, severity: int, seed: int = 0) -> Image.Image:
    """`image` under corruption `name` at `severity` (0 = unchanged copy); deterministic for a given seed."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
    if not 0 <= severity <= 5:
        raise ValueError(f"corruption severity must be 0..5 (0 = clean), got {severity}")
    if severity == 0:
        return image.convert("RGB").copy()
    return CORRUPTIONS[name](image, severity, np.random.default_rng(seed))


class CorruptedDataset(Dataset):
    """`dataset` with every item's `image` (and each of `images`) corrupted. The noise is seeded by (seed, the item's
    `id`), so the questions about one image see the same corrupted picture."""

    def __init__(self, dataset, name: str, severity: int, seed: int = 0):
        if name not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
        self.dataset, self.name, self.severity, self.seed = dataset, name, severity, seed
        for attr in ("split", "classnames", "templates", "descriptions", "vocabulary"):
            if hasattr(dataset, attr):  # suites read these from the dataset
                setattr(self, attr, getattr(dataset, attr))

    def __len__(self) -> int:
        return len(self.dataset)

    def _seed(self, item: dict, i: int) -> int:
        key = zlib.crc32(str(item.get("id", i)).encode())
        return int(np.random.SeedSequence([self.seed, key]).generate_state(1)[0])

    def __getitem__(self, i: int) -> dict:
        item = dict(self.dataset[i])
        seed = self._seed(item, i)
        if item.get("image") is not None:
            item["image"] = corrupt(item["image"], self.name, self.severity, seed)
        if "images" in item:
            item["images"] = [corrupt(im, self.name, self.severity, seed + k) for k, im in enumerate(item["images"])]
        return item
