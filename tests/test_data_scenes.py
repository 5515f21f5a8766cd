"""Ground truth of the shapes world agrees with the rendered pixels; scenes are deterministic from the seed."""

import numpy as np
import pytest

from modalign.data.worlds.shapes import ShapesWorld
from modalign.data.worlds.shapes.render import object_mask, render
from modalign.data.worlds.shapes.scenes import LayoutError, layout_scene
from modalign.data.worlds.shapes.vocab import COLORS, SHAPES


def _worlds():
    yield ShapesWorld(task="caption", n=40, seed=3, max_objects=5)
    yield ShapesWorld(task="caption", n=15, seed=4, background="mixed", max_overlap=0.2)
    yield ShapesWorld(task="caption", n=3, seed=5, image_size=448, max_objects=6)


def _visible(scene, k):
    """Pixels of object k not covered by objects drawn after it."""
    vis = object_mask(scene, k)
    for j in range(k + 1, len(scene["objects"])):
        vis &= ~object_mask(scene, j)
    return vis


@pytest.mark.parametrize("world", list(_worlds()), ids=["64px", "backgrounds", "448px"])
def test_pixels_boxes_and_visibility_match_the_graph(world):
    for i in range(world.n):
        scene = world.scene(i)
        img = np.asarray(render(scene))  # [S, S, 3]
        for k, obj in enumerate(scene["objects"]):
            cx, cy = obj["center"]
            assert tuple(img[cy, cx]) == COLORS[obj["color"]], (i, k, obj)
            mask = object_mask(scene, k)
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == obj["box"], (i, k)
            vis = _visible(scene, k)
            assert (img[vis] == COLORS[obj["color"]]).all()
            # Occlusion is limited by the overlap cap (in box area) and never hides more than half an object.
            assert vis.sum() >= 0.5 * mask.sum()


def test_counts_match_pixels_of_each_colour():
    world = ShapesWorld(task="caption", n=30, seed=8, max_objects=5)
    palette = {name: np.array(rgb, dtype=np.uint8) for name, rgb in COLORS.items()}
    for i in range(world.n):
        scene = world.scene(i)
        img = np.asarray(render(scene))
        seen = {c for c, rgb in palette.items() if (img == rgb).all(-1).any()}
        assert seen == set(scene["counts"]["colors"])
        assert sum(scene["counts"]["shapes"].values()) == scene["counts"]["objects"] == len(scene["objects"])
        for c, rgb in palette.items():
            expected = sum(_visible(scene, k).sum() for k, o in enumerate(scene["objects"]) if o["color"] == c)
            assert (img == rgb).all(-1).sum() == expected


def test_relations_and_nearest_from_pixel_geometry():
    world = ShapesWorld(task="caption", n=30, seed=9, min_objects=2, max_objects=5)
    for i in range(world.n):
        scene = world.scene(i)
        boxes, centers = [], []
        for k in range(len(scene["objects"])):
            ys, xs = np.nonzero(object_mask(scene, k))
            boxes.append((xs.min(), xs.max() + 1))
            centers.append(((xs.min() + xs.max() + 1) // 2, (ys.min() + ys.max() + 1) // 2))
        expected = set()
        for a in range(len(centers)):
            for b in range(len(centers)):
                if a == b:
                    continue
                margin = ((boxes[a][1] - boxes[a][0]) + (boxes[b][1] - boxes[b][0])) / 4
                dx, dy = centers[b][0] - centers[a][0], centers[b][1] - centers[a][1]
                expected |= {
                    (a, r, b)
                    for r, ok in [
                        ("left of", dx > margin),
                        ("right of", -dx > margin),
                        ("above", dy > margin),
                        ("below", -dy > margin),
                    ]
                    if ok
                }
        assert {tuple(t) for t in scene["relations"]} == expected
        c = np.array(centers, dtype=float)
        for a, j in enumerate(scene["nearest"]):
            d = np.linalg.norm(c - c[a], axis=1)
            d[a] = np.inf
            assert d[j] == d.min()


def test_every_shape_is_drawable_small_and_tight():
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        scene = layout_scene(rng, [(shape, "red", "small")], 32)
        img = np.asarray(render(scene))
        cx, cy = scene["objects"][0]["center"]
        assert tuple(img[cy, cx]) == COLORS["red"]


def test_same_seed_same_bytes_other_seed_differs():
    a = ShapesWorld(task="caption", n=5, seed=11, background="noise")
    b = ShapesWorld(task="caption", n=5, seed=11, background="noise")
    c = ShapesWorld(task="caption", n=5, seed=12, background="noise")
    for i in range(5):
        assert render(a.scene(i)).tobytes() == render(b.scene(i)).tobytes()
        assert a[i]["text"] == b[i]["text"]
    assert any(render(a.scene(i)).tobytes() != render(c.scene(i)).tobytes() for i in range(5))
    # Scene i does not depend on how many scenes the dataset holds.
    assert ShapesWorld(n=50, seed=11, background="noise").scene(4) == a.scene(4)


def test_crowded_layout_is_a_clear_error():
    with pytest.raises(LayoutError, match="lower max_objects"):
        layout_scene(np.random.default_rng(0), [("square", "red", "large")] * 40, 64)
    with pytest.raises(ValueError, match="unknown shapes task"):
        ShapesWorld(task="nope")
    with pytest.raises(ValueError, match="unknown split"):
        ShapesWorld(split="val")


def test_object_counts_are_drawn_uniformly_from_min_to_max_objects():
    n = 400
    world = ShapesWorld(task="caption", n=n, seed=4, min_objects=2, max_objects=5)
    counts = np.bincount([len(world.scene(i)["objects"]) for i in range(n)], minlength=6)
    assert counts[:2].sum() == 0 and np.all(np.abs(counts[2:] - n / 4) < 4 * np.sqrt(n / 4)), counts  # within 4 sigma
    with pytest.raises(ValueError, match="min_objects <= max_objects"):
        ShapesWorld(task="caption", n=3, min_objects=3, max_objects=2)
