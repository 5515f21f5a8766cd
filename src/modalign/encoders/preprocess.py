"""Image preprocessing for vision towers with PIL + numpy + torch only (no torchvision).

One `ImageProcessing` describes what a tower expects: RGB conversion, a bicubic resize (to a square, or shortest
edge then centre crop as CLIP does), scaling to [0, 1] and normalisation with the tower's mean/std. It can be read
from a Hugging Face `preprocessor_config.json`, and matches transformers' PIL image processors numerically.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.images import to_rgb  # 16-bit grey scaled, not clipped to white
from ..registry import ConfigError

_RESAMPLE = {0: Image.NEAREST, 1: Image.LANCZOS, 2: Image.BILINEAR, 3: Image.BICUBIC, 4: Image.BOX, 5: Image.HAMMING}


@dataclass
class ImageProcessing:
    height: int
    width: int
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    shortest_edge: int | None = None  # set: resize the short side to this, then centre-crop to height x width
    resample: int = Image.BICUBIC
    rescale_factor: float = 1 / 255

    @classmethod
    def square(cls, size: int, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> ImageProcessing:
        return cls(height=size, width=size, mean=tuple(mean), std=tuple(std))

    @classmethod
    def from_pretrained_dir(cls, path: str | Path, default_size: int) -> ImageProcessing:
        """Read `preprocessor_config.json` if the checkpoint has one; otherwise a square `default_size` resize."""
        cfg_path = Path(path) / "preprocessor_config.json"
        if not cfg_path.exists():
            return cls.square(default_size)
        cfg = json.loads(cfg_path.read_text())
        size = cfg.get("size", default_size)
        crop = cfg.get("crop_size")
        shortest = None
        if isinstance(size, int):
            size = {"shortest_edge": size} if cfg.get("default_to_square") is False else {"height": size, "width": size}
        if "shortest_edge" in size:
            shortest = int(size["shortest_edge"])
            if cfg.get("do_center_crop", True) and crop:
                crop = {"height": crop, "width": crop} if isinstance(crop, int) else crop
                height, width = int(crop["height"]), int(crop["width"])
            else:  # no crop: HF keeps the aspect ratio, which cannot batch; a square of the short edge can
                height = width = shortest
                shortest = None
        else:
            height, width = int(size["height"]), int(size["width"])
        return cls(
            height=height,
            width=width,
            mean=tuple(cfg.get("image_mean", (0.5, 0.5, 0.5))) if cfg.get("do_normalize", True) else (0.0, 0.0, 0.0),
            std=tuple(cfg.get("image_std", (0.5, 0.5, 0.5))) if cfg.get("do_normalize", True) else (1.0, 1.0, 1.0),
            shortest_edge=shortest,
            resample=_RESAMPLE.get(int(cfg.get("resample", 3)), Image.BICUBIC),
            rescale_factor=float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else 1.0,
        )

    def _resize(self, image: Image.Image) -> Image.Image:
        if self.shortest_edge is None:
            return image.resize((self.width, self.height), resample=self.resample)
        # CLIP: short side -> shortest_edge (long side truncated like HF's int()), then centre crop
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        image = image.resize((new_w, new_h), resample=self.resample)
        top, left = (new_h - self.height) // 2, (new_w - self.width) // 2
        if top < 0 or left < 0:
            raise ConfigError(
                f"crop {self.height}x{self.width} is larger than the resized image {new_h}x{new_w}; "
                "set crop_size <= shortest_edge in preprocessor_config.json"
            )
        return image.crop((left, top, left + self.width, top + self.height))

    def __call__(self, images) -> torch.Tensor:
        """list of PIL images (any mode/size) -> float tensor [B, 3, height, width]."""
        if isinstance(images, Image.Image):
            images = [images]
        if len(images) == 0:
            raise ValueError("preprocess got an empty list of images")
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        out = []
        for image in images:
            if not isinstance(image, Image.Image):
                raise TypeError(f"preprocess expects PIL images, got {type(image).__name__}; use PIL.Image.open(...)")
            array = np.asarray(self._resize(to_rgb(image)), dtype=np.float32)  # [H, W, 3]
            array = array.transpose(2, 0, 1) * np.float32(self.rescale_factor)  # [3, H, W]
            out.append(torch.from_numpy((array - mean) / std))
        return torch.stack(out)  # [B, 3, H, W]
