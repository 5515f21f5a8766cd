"""AnyRes tiling: grid choice on hand-worked cases, tiles reassembling to the resized+padded image, feature merging."""

import numpy as np
import pytest
import torch
from PIL import Image

from modalign.encoders import VISION_ENCODERS
from modalign.encoders.preprocess import ImageProcessing
from modalign.encoders.tiling import (
    AnyResTiler,
    divide_into_tiles,
    grid_pinpoints_from_max_tiles,
    merge_tile_features,
    resize_and_pad,
    select_best_resolution,
)
from modalign.registry import ConfigError

# LLaVA-1.6's pinpoints shape at a 10 px tile: (width, height)
PINS = [(10, 20), (20, 10), (20, 20), (30, 10), (10, 30)]


@pytest.mark.parametrize(
    "size, expected",
    [
        ((30, 10), (30, 10)),  # exact fit keeps all 300 px
        ((40, 40), (20, 20)),  # square: 20x20 keeps 400 px; 10x20 / 30x10 only 100
        ((100, 20), (30, 10)),  # 5:1 -> 30x6=180 beats 20x4=80
        ((12, 30), (10, 30)),  # tall: 10x25=250 beats 8x20=160
        ((5, 5), (10, 20)),  # tiny: every grid keeps all 25 px; least padding (area 200), first in list wins
        ((8, 3), (10, 20)),  # all keep 24 px; 10x20 and 20x10 both waste 176: the earlier stays (strict <)
    ],
)
def test_select_best_resolution_hand_cases(size, expected):
    assert select_best_resolution(size, PINS) == expected


def test_select_best_resolution_llava_scale():
    pins = [(336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008)]
    # 1000x500: 672x336 holds 672*336 px with no padding; 672x672 and 1008x336 hold the same but pad
    assert select_best_resolution((1000, 500), pins) == (672, 336)
    # 800x800: 672x672 keeps 451584 px, every other candidate at most 336*336
    assert select_best_resolution((800, 800), pins) == (672, 672)


def test_pinpoints_from_max_tiles():
    pins = grid_pinpoints_from_max_tiles(10, 4)
    grids = sorted((w // 10, h // 10) for w, h in pins)
    assert grids == [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (3, 1), (4, 1)]
    with pytest.raises(ConfigError):
        grid_pinpoints_from_max_tiles(10, 0)


def test_resize_and_pad_hand_case():
    image = Image.new("RGB", (100, 20), (200, 100, 50))
    canvas, box = resize_and_pad(image, (30, 10))
    # scale_w = 0.3 < scale_h = 0.5 -> 30 x ceil(20*0.3)=6, centred: top = (10-6)//2 = 2
    assert canvas.size == (30, 10) and box == (0, 2, 30, 8)
    a = np.asarray(canvas)
    assert (a[:2] == 0).all() and (a[8:] == 0).all()
    assert (a[2:8] == (200, 100, 50)).all()


def _identity_tiler(tile, **kw):
    # mean 0, std 1, no rescale: pixel values stay the 0..255 integers, so tiles compare exactly
    proc = ImageProcessing(height=tile, width=tile, mean=(0, 0, 0), std=(1, 1, 1), rescale_factor=1.0)
    return AnyResTiler(tile, proc, **kw)


def test_tiles_reassemble_to_resized_padded_image():
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (37, 83, 3), dtype=np.uint8))  # 83 wide, 37 tall
    tiler = _identity_tiler(16, grid_pinpoints=[(16, 16), (32, 16), (48, 16), (32, 32), (64, 32)])
    out = tiler(image)
    # 83x37: 64x32 keeps 64x28=1792 px (scale .771); 48x16 keeps 35x16=560... -> 64x32, a 2x4 grid
    assert out.grid == (2, 4)
    assert out.pixel_values.shape == (1 + 8, 3, 16, 16)
    assert out.original_size == (83, 37)
    canvas, box = resize_and_pad(image, (64, 32))
    rows = [torch.cat(list(out.pixel_values[1 + r * 4 : 1 + (r + 1) * 4]), dim=2) for r in range(2)]  # [3, 16, 64]
    stitched = torch.cat(rows, dim=1).permute(1, 2, 0).numpy()  # [32, 64, 3]
    assert np.array_equal(stitched, np.asarray(canvas, dtype=np.float32))
    expected_region = np.asarray(image.resize((box[2] - box[0], box[3] - box[1]), Image.BICUBIC))
    assert np.array_equal(np.asarray(canvas)[box[1] : box[3], box[0] : box[2]], expected_region)
    glob = np.asarray(image.resize((16, 16), Image.BICUBIC), dtype=np.float32)
    assert np.array_equal(out.pixel_values[0].permute(1, 2, 0).numpy(), glob)


def test_divide_rejects_partial_tiles():
    with pytest.raises(ValueError, match="whole number"):
        divide_into_tiles(Image.new("RGB", (30, 20)), 16)


def test_tiler_validates_pinpoints():
    with pytest.raises(ConfigError, match="multiples"):
        _identity_tiler(16, grid_pinpoints=[(20, 16)])
    with pytest.raises(ConfigError, match="not both"):
        _identity_tiler(16, grid_pinpoints=[(16, 16)], max_tiles=2)


def test_merge_tile_features_layout_and_unpad():
    rows, cols, side, d = 1, 3, 4, 2
    feats = torch.zeros(1 + rows * cols, side * side, d)
    feats[0] = -1.0  # global view
    for t in range(rows * cols):
        r, c = divmod(t, cols)
        for k in range(side * side):
            y, x = divmod(k, side)
            feats[1 + t, k] = torch.tensor([r * side + y, c * side + x], dtype=torch.float)  # global (Y, X)
    merged = merge_tile_features(feats, (rows, cols))
    assert merged.shape == (16 + 4 * 12, d)
    assert (merged[:16] == -1).all()
    grid = merged[16:].view(4, 12, d)
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(12.0), indexing="ij")
    assert torch.equal(grid[..., 0], ys) and torch.equal(grid[..., 1], xs)
    # 100x20 image in a 4x12 map: aspect 5 > 3 -> keep int(20*12/100) = 2 rows, drop (4-2)//2 = 1 each side
    newline = torch.tensor([9.0, 9.0])
    merged = merge_tile_features(feats, (rows, cols), original_size=(100, 20), newline=newline)
    body = merged[16:].view(2, 13, d)
    assert torch.equal(body[:, :12, 0], ys[1:3]) and (body[:, 12] == 9).all()


def test_anyres_with_a_real_tower():
    torch.manual_seed(0)
    tower = VISION_ENCODERS["vit"](image_size=32, patch_size=8, hidden_size=32, num_layers=1, num_heads=2)
    tiler = AnyResTiler.for_encoder(tower)  # LLaVA-1.6 default grids at 32 px
    out = tiler(Image.new("RGB", (130, 60), (10, 200, 30)))
    # 130x60: 96x32 keeps 69x32 = 2208 px; 64x32 and 64x64 keep 64x29 = 1856; 32x64 and 32x96 keep 32x14
    assert out.grid == (1, 3) and out.pixel_values.shape == (4, 3, 32, 32)
    feats = tower(out.pixel_values).tokens  # [4, 16, 32]
    merged = merge_tile_features(feats, out.grid, out.original_size, newline=torch.zeros(32))
    # 4x12 map, aspect 130/60 < 3 -> keep int(130*4/60) = 8 columns (drop 2 each side), + 1 newline per row
    assert merged.shape == (16 + 4 * 9, 32)
