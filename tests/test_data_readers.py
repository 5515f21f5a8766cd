"""Readers: each kind of bad record is a clear error naming the record, or skipped and counted under skip_bad."""

import io
import json
import tarfile

import pytest
from PIL import Image

from modalign.data import DATASETS
from modalign.data.records import BadRecord
from modalign.data.shards import ShardWriter, iter_shards


def _png(color=(255, 0, 0)):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def root(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "good.png").write_bytes(_png())
    (tmp_path / "img" / "corrupt.png").write_bytes(b"this is not an image at all")
    (tmp_path / "img" / "truncated.png").write_bytes(_png()[:40])
    (tmp_path.parent / "outside.png").write_bytes(_png())
    return tmp_path


# kind -> (image path, text); each is line 2 of its file (line 1 is a good record)
BAD = {
    "missing image": ("img/nope.png", "a caption", "does not exist"),
    "escaping path": ("../outside.png", "a caption", "escapes the data root"),
    "empty text": ("img/good.png", "  ", "empty"),
    "corrupt image": ("img/corrupt.png", "a caption", "cannot be decoded"),
    "truncated image": ("img/truncated.png", "a caption", "cannot be decoded"),
}


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_image_captions_bad_records(root, kind, fmt):
    image, text, message = BAD[kind]
    rows = [("img/good.png", "a red circle"), (image, text), ("img/good.png", "a blue star")]
    path = root / f"captions.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"image": i, "text": t}) + "\n" for i, t in rows))
    else:
        path.write_text("image,caption\n" + "".join(f"{i},{t}\n" for i, t in rows))
    line = 2 if fmt == "jsonl" else 3
    with pytest.raises(BadRecord, match=rf"captions\.{fmt}:{line}: .*{message}"):
        ds = DATASETS["image-captions"](path=str(path))
        [ds[k] for k in range(len(ds))]
    with pytest.warns(UserWarning, match="skipped bad record"):
        ds = DATASETS["image-captions"](path=str(path), skip_bad=True)
        items = [ds[k] for k in range(len(ds))] + list(ds)
    assert ds.skipped == 1
    assert {it["text"] for it in items} == {"a red circle", "a blue star"}
    assert all(it["image"].mode == "RGB" for it in items)


def test_undecodable_bytes_and_bad_json_lines(root):
    path = root / "c.jsonl"
    good = json.dumps({"image": "img/good.png", "text": "ok"}).encode()
    path.write_bytes(good + b"\n" + b'{"image": "img/good.png", "text": "\xff\xfe"}\n' + b"{not json\n" + good + b"\n")
    with pytest.raises(BadRecord, match=r"c\.jsonl:2: bytes are not UTF-8"):
        DATASETS["image-captions"](path=str(path))
    with pytest.warns(UserWarning):
        ds = DATASETS["image-captions"](path=str(path), skip_bad=True)
    assert len(ds) == 2 and ds.skipped == 2


def _convo(image, q="What is it?", a="A red square."):
    rec = {"id": "x", "conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    if image is not None:
        rec["image"] = image
    return rec


@pytest.mark.parametrize("kind", list(BAD))
def test_llava_json_bad_records(root, kind):
    image, text, message = BAD[kind]
    records = [_convo("img/good.png"), _convo(image, a=text), _convo("img/good.png")]
    path = root / "llava.json"
    path.write_text(json.dumps(records))
    with pytest.raises(BadRecord, match=rf"llava\.json\[1\]: .*{message}"):
        ds = DATASETS["llava-json"](path=str(path), image_root=str(root))
        [ds[k] for k in range(len(ds))]
    with pytest.warns(UserWarning):
        ds = DATASETS["llava-json"](path=str(path), image_root=str(root), skip_bad=True)
        items = list(ds)
    assert ds.skipped == 1 and len(items) == 2
    assert items[0]["conversations"][0]["value"] == "<image>\nWhat is it?"  # image token added as LLaVA does


def test_llava_structure_errors(root):
    path = root / "l.jsonl"
    bad_turns = {"image": "img/good.png", "conversations": [{"from": "gpt", "value": "hi"}]}
    lines = [_convo("img/good.png"), bad_turns, _convo(None)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with pytest.raises(BadRecord, match=r"l\.jsonl:2: turn 0 must be from 'human'"):
        DATASETS["llava-json"](path=str(path))
    with pytest.warns(UserWarning):
        ds = DATASETS["llava-json"](path=str(path), skip_bad=True)
    assert len(ds) == 1 and ds.skipped == 2
    with pytest.warns(UserWarning):
        text_only = DATASETS["llava-json"](path=str(path), skip_bad=True, allow_text_only=True)
    assert len(text_only) == 2 and text_only[1]["image"] is None
    (root / "broken.json").write_bytes(b'[{"id": "a"},\n {"id": "\xff"}]')
    with pytest.raises(BadRecord, match=r"broken\.json:2: bytes are not UTF-8"):
        DATASETS["llava-json"](path=str(root / "broken.json"))


def test_shards_bad_members_and_truncated_shard(tmp_path):
    with ShardWriter(tmp_path / "s", per_shard=10) as w:
        w.write("a", _png(), {"text": "a red circle"})
        w.write("b", b"garbage bytes", {"text": "corrupt image"})
        w.write("c", _png(), {"text": ""})
        w.write("d", _png((0, 0, 255)), {"text": "a blue star"})
    shard = tmp_path / "s" / "shard-000000.tar"
    with pytest.raises(BadRecord, match=r"shard-000000\.tar:c\.json: text is empty"):
        DATASETS["shards"](path=str(tmp_path / "s"))
    with pytest.warns(UserWarning):
        ds = DATASETS["shards"](path=str(tmp_path / "s"), skip_bad=True)
        items = [ds[k] for k in range(len(ds))]
    assert ds.skipped == 2 and {it["text"] for it in items} == {"a red circle", "a blue star"}
    with pytest.raises(BadRecord, match=r"shard-000000\.tar:b\.png: image cannot be decoded"):
        list(iter_shards(shard))
    # Truncate inside the last sample's image: earlier samples survive, the shard is named.
    data = shard.read_bytes()
    with tarfile.open(shard) as tar:
        offset = tar.getmember("d.png").offset_data
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: offset + 20])
    with pytest.raises(BadRecord, match=r"cut\.tar"):
        ds = DATASETS["shards"](path=str(cut), skip_bad=False)
        [ds[k] for k in range(len(ds))]
    with pytest.warns(UserWarning):
        streamed = list(iter_shards(cut, skip_bad=True))
    assert [s["text"] for s in streamed] == ["a red circle"]


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DATASETS["image-captions"](path=str(tmp_path / "none.csv"))
    with pytest.raises(FileNotFoundError, match="no tar shards"):
        DATASETS["shards"](path=str(tmp_path))
