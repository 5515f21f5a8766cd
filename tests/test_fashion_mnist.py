import gzip
import struct

import numpy as np
import pytest

from modalign.data.fashion_mnist import CLASSNAMES, FashionMNIST, FashionMNISTMissing, read_idx


def _write_idx(path, array, gz=True):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def tiny_root(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(20, 28, 28))
    labels = np.arange(20) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz=False)
    return tmp_path, images, labels


def test_read_idx_roundtrip(tiny_root):
    root, images, labels = tiny_root
    assert np.array_equal(read_idx(root / "t10k-images-idx3-ubyte"), images)
    assert np.array_equal(read_idx(root / "t10k-labels-idx1-ubyte"), labels)


def test_truncated_idx_is_a_clear_error(tmp_path):
    header = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10)
    (tmp_path / "x").write_bytes(header + bytes(5))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "x")


def test_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(FashionMNISTMissing, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST("test", root=str(tmp_path))


def test_items_classes_and_captions(tiny_root):
    root, images, _labels = tiny_root
    ds = FashionMNIST("test", root=str(root), exclude=["sandal", "bag"], caption="description")
    assert len(ds) == 16 and "sandal" not in ds.classnames and "bag" not in ds.classnames
    item = ds[3]
    assert item["image"].mode == "RGB" and item["image"].size == (28, 28)
    assert np.array_equal(np.asarray(item["image"])[..., 0], images[int(ds.index[3])])
    assert item["text"] in ds.descriptions[ds.classnames[item["label"]]]
    assert ds.descriptions["coat"][0] == "a photo of a coat." and "buttons" in ds.descriptions["coat"][-1]
    assert ds.classnames[item["label"]] == CLASSNAMES[item["meta"]["class_id"]] == item["meta"]["class"]
    again = FashionMNIST("test", root=str(root), exclude=["sandal", "bag"], caption="description")
    assert [again[i]["text"] for i in range(len(again))] == [ds[i]["text"] for i in range(len(ds))]
    named = FashionMNIST("test", root=str(root), classes=["coat"], caption="name")
    assert len(named) == 2 and all("coat" in named[i]["text"] for i in range(2))
    assert [named[i]["label"] for i in range(2)] == [0, 0] and named.classnames == ["coat"]


def test_bad_class_name(tiny_root):
    with pytest.raises(ValueError, match="unknown Fashion-MNIST class"):
        FashionMNIST("test", root=str(tiny_root[0]), classes=["hat"])


def test_knowledge_questions_follow_the_table_balanced_and_skip_ambiguous_classes(tmp_path):
    from modalign.data.fashion_mnist import knowledge_table

    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 255, size=(200, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(200) % 10)
    table = knowledge_table()
    ds = FashionMNIST("test", root=str(tmp_path), task="knowledge", n=40)
    assert len(ds) == 40
    kinds = list(table["questions"])
    cells = {(k, a): 0 for k in kinds for a in ("yes", "no")}
    for i in range(len(ds)):
        item = ds[i]
        cls = item["meta"]["class"]
        assert table["answers"][cls][item["qtype"]] == item["answer"]  # never a class the table leaves out
        assert item["question"] == table["questions"][item["qtype"]] and item["choices"] == ["yes", "no"]
        cells[item["qtype"], item["answer"]] += 1
    assert set(cells.values()) == {5}  # 40 questions: 4 kinds x (5 yes + 5 no)
    # the bag is the one class that carries things: every "yes" of that kind is a bag
    carry_yes = {
        ds[i]["meta"]["class"] for i in range(len(ds)) if ds[i]["qtype"] == "carry" and ds[i]["answer"] == "yes"
    }
    assert carry_yes == {"bag"}
    with pytest.raises(ValueError, match="choose 1"):
        FashionMNIST("test", root=str(tmp_path), task="knowledge", n=4000)
    with pytest.raises(ValueError, match="unknown knowledge kinds"):
        FashionMNIST("test", root=str(tmp_path), task="knowledge", kinds=["hat"])
    assert {"yes", "no", table["questions"]["feet"]} <= set(ds.texts())
