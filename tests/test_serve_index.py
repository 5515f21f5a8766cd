"""The demo's image-folder index: which files it takes, embeddings cached by file content and model fingerprint,
progress reported, unreadable files skipped and named; the folder's captions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from serve_models import image_folder, tiny_dual

from modalign.serve.index import EmbeddingCache, FolderIndex, build_index, folder_captions, list_images
from modalign.serve.runs import ServedModel
from modalign.serve.safety import Refused


class CountingModel:
    """A dual encoder's embed_images that counts the images it embeds."""

    def __init__(self, model):
        self.model, self.seen = model, 0

    def embed_images(self, images):
        self.seen += len(images)
        return self.model.embed_images(images)


def test_images_are_listed_sorted_without_hidden_folders_or_links_out(tmp_path):
    root = image_folder(tmp_path / "f", n=3)
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (4, 4)).save(outside)
    (root / "images" / "link.png").symlink_to(outside)
    (root / "notes.txt").write_text("x")
    assert list_images(root) == ["extra.jpg", "images/00.png", "images/01.png", "images/02.png", "images/broken.png"]
    assert list_images(root, max_images=2) == ["extra.jpg", "images/00.png"]


def test_index_embeds_each_file_once_and_reuses_the_cache_by_content(tmp_path):
    root = image_folder(tmp_path / "f", n=4)
    model = CountingModel(tiny_dual())
    calls = []
    index = build_index(model, "fp1", root, tmp_path / "cache", progress=lambda d, t: calls.append((d, t)))
    assert index.names == ["extra.jpg", "images/00.png", "images/01.png", "images/02.png", "images/03.png"]
    assert [n for n, _ in index.skipped] == ["images/broken.png"] and "Could not read" in index.skipped[0][1]
    assert model.seen == 5 and index.embedded == 5
    assert calls[0] == (0, 6) and calls[-1] == (6, 6) and calls == sorted(calls)
    want = model.model.embed_images([Image.open(index.path(i)).convert("RGB") for i in range(5)]).numpy()
    assert np.allclose(index.vectors, want, atol=1e-6)

    again = build_index(model, "fp1", root, tmp_path / "cache")  # a restart: everything from the cache
    assert model.seen == 5 and again.embedded == 0 and np.array_equal(again.vectors, index.vectors)
    Image.new("RGB", (24, 24), "blue").save(root / "images" / "01.png")  # new content under an old name
    third = build_index(model, "fp1", root, tmp_path / "cache")
    assert model.seen == 6 and third.embedded == 1
    assert not np.allclose(third.vectors[2], index.vectors[2]) and np.array_equal(third.vectors[3], index.vectors[3])
    build_index(model, "fp2", root, tmp_path / "cache")  # another model: its own cache file
    assert model.seen == 11
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["fp1.npz", "fp2.npz"]


def test_a_damaged_cache_is_rebuilt_not_trusted(tmp_path):
    (tmp_path / "fp.npz").write_bytes(b"not a zip")
    assert EmbeddingCache(tmp_path, "fp").vectors == {}
    cache = EmbeddingCache(tmp_path, "fp")
    cache.vectors["k"] = np.ones(3, np.float32)
    cache.save()
    assert list(EmbeddingCache(tmp_path, "fp").vectors) == ["k"]


def test_folder_index_builds_once_per_model_and_needs_a_folder(tmp_path):
    root = image_folder(tmp_path / "f", n=2)
    model = CountingModel(tiny_dual())
    served = ServedModel("d", tmp_path, "dual", model, "fp", "")
    folder = FolderIndex(root, tmp_path / "cache")
    assert folder.get(served) is folder.get(served) and model.seen == 3
    with pytest.raises(Refused, match="--images DIR"):
        FolderIndex(None, tmp_path).get(served)
    assert folder.captions() == {"images/00.png": "a red circle", "images/01.png": "two blue squares"}


def test_captions_are_read_from_captions_jsonl_and_bad_lines_ignored(tmp_path):
    assert folder_captions(tmp_path) == {}
    lines = ['{"image": "a.png", "text": "one"}', "[1, 2]", '{"image": 3, "text": "x"}', "broken"]
    (tmp_path / "captions.jsonl").write_text("\n".join(lines + ['{"image": "./b.png", "text": "two"}']) + "\n")
    assert folder_captions(tmp_path) == {"a.png": "one", "b.png": "two"}
