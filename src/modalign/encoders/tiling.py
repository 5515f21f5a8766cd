"""AnyRes tiling (LLaVA-1.6 / LLaVA-NeXT): show a fixed-size vision tower a high-resolution image of any aspect.

1. pick the grid resolution (a multiple of the tower's tile size) that keeps the most of the image's pixels
   (`select_best_resolution`: maximise effective resolution, then minimise padding),
2. resize keeping the aspect ratio and pad to that resolution, centred (black by default, as LLaVA-1.6),
3. cut it into tiles at the tower's native size, row-major, and prepend a global view (the whole image squashed
   to one tile),
4. a model encodes all T = 1 + rows*cols tiles as one batch and joins the tile tokens back into the image's
   spatial layout with `merge_tile_features` (padding removed, an optional newline embedding after each row).
Rules follow haotian-liu/LLaVA `llava/mm_utils.py` and `llava_arch.py` (`unpad_image`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from PIL import Image

from ..data.images import to_rgb  # 16-bit grey scaled, not clipped to white
from ..registry import ConfigError

# LLaVA-1.6's pinpoints at 336 px are the grids 1x2, 2x1, 2x2, 3x1, 1x3 (cols x rows) of the tile size.
DEFAULT_GRIDS = ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3))


def select_best_resolution(original_size: tuple[int, int], possible_resolutions) -> tuple[int, int]:
    """(width, height) of the candidate that keeps the most of the image's pixels, ties -> least padding."""
    original_width, original_height = original_size
    best_fit, max_effective, min_wasted = None, 0, float("inf")
    for width, height in possible_resolutions:
        scale = min(width / original_width, height / original_height)
        down_w, down_h = int(original_width * scale), int(original_height * scale)
        # upscaling adds no information, so a candidate is credited at most the original pixel count
        effective = min(down_w * down_h, original_width * original_height)
        wasted = width * height - effective
        if effective > max_effective or (effective == max_effective and wasted < min_wasted):
            best_fit, max_effective, min_wasted = (int(width), int(height)), effective, wasted
    if best_fit is None:
        raise ConfigError("AnyRes: no candidate resolutions; give grid_pinpoints or max_tiles >= 1")
    return best_fit


def grid_pinpoints_from_max_tiles(tile_size: int, max_tiles: int) -> list[tuple[int, int]]:
    """Every grid of at most `max_tiles` tiles as a (width, height) resolution (as LLaVA-OneVision's anyres_max)."""
    if max_tiles < 1:
        raise ConfigError(f"AnyRes: max_tiles={max_tiles} must be >= 1")
    return [
        (c * tile_size, r * tile_size)
        for r in range(1, max_tiles + 1)
        for c in range(1, max_tiles + 1)
        if r * c <= max_tiles
    ]


def resize_and_pad(image: Image.Image, target: tuple[int, int], pad_color=(0, 0, 0)):
    """Resize (bicubic, aspect kept) into `target` (width, height) and centre on a padded canvas.

    Returns the canvas and the box (left, top, right, bottom) the image occupies in it."""
    original_width, original_height = image.size
    target_width, target_height = target
    scale_w, scale_h = target_width / original_width, target_height / original_height
    if scale_w < scale_h:
        new_width, new_height = target_width, min(math.ceil(original_height * scale_w), target_height)
    else:
        new_width, new_height = min(math.ceil(original_width * scale_h), target_width), target_height
    resized = to_rgb(image).resize((new_width, new_height), resample=Image.BICUBIC)
    canvas = Image.new("RGB", (target_width, target_height), tuple(pad_color))
    left, top = (target_width - new_width) // 2, (target_height - new_height) // 2
    canvas.paste(resized, (left, top))
    return canvas, (left, top, left + new_width, top + new_height)


def divide_into_tiles(image: Image.Image, tile_size: int) -> list[Image.Image]:
    """Row-major tiles of `tile_size` x `tile_size` (the image's sides must be multiples of it)."""
    width, height = image.size
    if width % tile_size or height % tile_size:
        raise ValueError(f"image {width}x{height} is not a whole number of {tile_size}px tiles")
    return [
        image.crop((x, y, x + tile_size, y + tile_size))
        for y in range(0, height, tile_size)
        for x in range(0, width, tile_size)
    ]


@dataclass
class AnyResImage:
    pixel_values: torch.Tensor  # [T, 3, tile, tile]; index 0 = global view, then the grid row-major
    grid: tuple[int, int]  # (rows, cols)
    original_size: tuple[int, int]  # (width, height) of the input image, for unpadding

    @property
    def num_tiles(self) -> int:
        return self.pixel_values.shape[0]


class AnyResTiler:
    """Tiles images for a vision tower: `AnyResTiler.for_encoder(tower)(image) -> AnyResImage`."""

    def __init__(
        self, tile_size: int, preprocess, grid_pinpoints=None, max_tiles: int | None = None, pad_color=(0, 0, 0)
    ):
        if grid_pinpoints is not None and max_tiles is not None:
            raise ConfigError("AnyRes: give either grid_pinpoints or max_tiles, not both")
        if grid_pinpoints is None:
            grid_pinpoints = (
                grid_pinpoints_from_max_tiles(tile_size, max_tiles)
                if max_tiles is not None
                else [(c * tile_size, r * tile_size) for c, r in DEFAULT_GRIDS]
            )
        grid_pinpoints = [(int(w), int(h)) for w, h in grid_pinpoints]
        bad = [p for p in grid_pinpoints if p[0] % tile_size or p[1] % tile_size or min(p) <= 0]
        if bad:
            raise ConfigError(f"AnyRes: grid_pinpoints {bad} are not positive multiples of the tile size {tile_size}")
        self.tile_size = tile_size
        self.preprocess = preprocess
        self.grid_pinpoints = grid_pinpoints
        self.pad_color = tuple(pad_color)

    @classmethod
    def for_encoder(cls, encoder, **kwargs) -> AnyResTiler:
        return cls(encoder.image_size, encoder.preprocess, **kwargs)

    def tile(self, image: Image.Image):
        """PIL level: (global view, tiles, (rows, cols), padded canvas)."""
        width, height = select_best_resolution(image.size, self.grid_pinpoints)
        canvas, _ = resize_and_pad(image, (width, height), self.pad_color)
        tiles = divide_into_tiles(canvas, self.tile_size)
        global_view = to_rgb(image).resize((self.tile_size, self.tile_size), resample=Image.BICUBIC)
        return global_view, tiles, (height // self.tile_size, width // self.tile_size), canvas

    def __call__(self, image: Image.Image) -> AnyResImage:
        global_view, tiles, grid, _ = self.tile(image)
        pixel_values = self.preprocess([global_view] + tiles)  # [1 + rows*cols, 3, tile, tile]
        return AnyResImage(pixel_values=pixel_values, grid=grid, original_size=tuple(image.size))


def unpad_feature_grid(features: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
    """Drop the rows/cols of a feature map [H, W, D] that only saw padding (LLaVA-1.6's `unpad_image`)."""
    original_width, original_height = original_size
    current_height, current_width = features.shape[:2]
    if original_width / original_height > current_width / current_height:  # padded above and below
        new_height = int(original_height * current_width / original_width)
        pad = (current_height - new_height) // 2
        return features[pad : current_height - pad]
    new_width = int(original_width * current_height / original_height)  # padded left and right
    pad = (current_width - new_width) // 2
    return features[:, pad : current_width - pad]


def merge_tile_features(
    features: torch.Tensor, grid: tuple[int, int], original_size=None, newline: torch.Tensor | None = None
) -> torch.Tensor:
    """Tile tokens [T, n, D] (n = h*w square, index 0 = global view) -> one sequence [M, D].

    The grid tiles are stitched into a [rows*h, cols*w, D] map, unpadded if `original_size` is given, and a
    `newline` [D] is appended after every row so the LM sees where rows end; the global view's n tokens come first.
    """
    rows, cols = grid
    t, n, d = features.shape
    if t != 1 + rows * cols:
        raise ValueError(f"expected 1 + {rows}*{cols} = {1 + rows * cols} tiles, got {t}")
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"tile tokens must form a square map, got n={n}")
    grid_feats = features[1:].view(rows, cols, side, side, d)  # [R, C, h, w, D]
    grid_feats = grid_feats.permute(0, 2, 1, 3, 4).reshape(rows * side, cols * side, d)  # [R*h, C*w, D]
    if original_size is not None:
        grid_feats = unpad_feature_grid(grid_feats, original_size)
    if newline is not None:
        column = newline.view(1, 1, d).expand(grid_feats.shape[0], 1, d).to(grid_feats.dtype)
        grid_feats = torch.cat([grid_feats, column], dim=1)  # [H', W'+1, D]
    return torch.cat([features[0], grid_feats.reshape(-1, d)], dim=0)  # [n + H'*W'(+H'), D]
