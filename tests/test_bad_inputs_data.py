"""The bad-input corpus, data half: images, captions manifests, LLaVA conversations and tar shards as a hostile or
careless user supplies them. Each kind is a clear BadRecord naming file and record, or under skip_bad a skip that
is counted — and the images PIL gets wrong by default (16-bit, EXIF, CMYK, palettes, animations) come out right.
The other half (recipes, model folders, checkpoints) is test_bad_inputs_config.py."""

import io
import json
import os
import tarfile

import numpy as np
import pytest
from hostile_images import bomb_png, exif_rotated_jpeg, grey16_gradient, png
from PIL import Image

from modalign.data import DATASETS
from modalign.data.images import open_image, prepare_image, set_max_image_pixels
from modalign.data.records import BadRecord
from modalign.data.shards import ShardWriter

GOOD = png(Image.new("RGB", (8, 8), (200, 10, 10)))


def _captions(tmp, rows) -> str:
    (tmp / "img").mkdir(exist_ok=True)
    (tmp / "img" / "good.png").write_bytes(GOOD)
    path = tmp / "captions.jsonl"
    raw = [r if isinstance(r, bytes) else (r if isinstance(r, str) else json.dumps(r)).encode() for r in rows]
    path.write_bytes(b"".join(r + b"\n" for r in raw))
    return str(path)


def bad_caption_record(tmp, row, message, line=2):
    """Line `line` of a captions file (between two good records) is bad: named strictly, skipped and counted."""
    path = _captions(tmp, [{"image": "img/good.png", "text": "first"}, row, {"image": "img/good.png", "text": "last"}])
    with pytest.raises(BadRecord, match=rf"captions\.jsonl:{line}: .*{message}"):
        ds = DATASETS["image-captions"](path=path)
        [ds.load_record(k) for k in range(len(ds))]
    with pytest.warns(UserWarning, match="skipped bad record"):
        ds = DATASETS["image-captions"](path=path, skip_bad=True)
        texts = [ds[k]["text"] for k in range(len(ds))]
    assert ds.skipped == 1 and sorted(set(texts)) == ["first", "last"]


def bad_image_file(data: bytes, message: str, name: str = "bad.png"):
    def case(tmp):
        (tmp / "img").mkdir(exist_ok=True)
        (tmp / "img" / name).write_bytes(data)
        bad_caption_record(tmp, {"image": f"img/{name}", "text": "bad"}, message)

    return case


def decoded(data: bytes, check):
    """An image PIL's defaults get wrong, read right through a reader."""

    def case(tmp):
        (tmp / "img").mkdir(exist_ok=True)
        (tmp / "img" / "x.img").write_bytes(data)
        ds = DATASETS["image-captions"](path=_captions(tmp, [{"image": "img/x.img", "text": "t"}]))
        im = ds[0]["image"]
        assert im.mode == "RGB" and check(np.asarray(im))

    return case


def over_env_limit(tmp, monkeypatch):
    monkeypatch.setenv("MODALIGN_MAX_IMAGE_PIXELS", "1000")
    bad_image_file(png(Image.new("RGB", (40, 40))), r"40 x 40 = 1,600 pixels, over the limit of 1,000")(tmp)
    monkeypatch.setenv("MODALIGN_MAX_IMAGE_PIXELS", "2000")
    assert open_image(png(Image.new("RGB", (40, 40)))).size == (40, 40)


def over_set_limit(tmp):
    set_max_image_pixels(100)
    try:
        with pytest.raises(BadRecord, match="upload: image is 16 x 16 = 256 pixels, over the limit of 100"):
            prepare_image(Image.new("RGB", (16, 16)), "upload")  # what a web demo calls on a decoded upload
    finally:
        set_max_image_pixels(None)
    assert prepare_image(Image.new("I;16", (16, 16)), "upload").mode == "RGB"


def symlink_out(tmp):
    (tmp.parent / f"{tmp.name}-outside.png").write_bytes(GOOD)
    (tmp / "img").mkdir(exist_ok=True)
    os.symlink(tmp.parent / f"{tmp.name}-outside.png", tmp / "img" / "link.png")
    bad_caption_record(tmp, {"image": "img/link.png", "text": "x"}, "escapes the data root")


def directory_as_image(tmp):
    (tmp / "img" / "dir.png").mkdir(parents=True)
    bad_caption_record(tmp, {"image": "img/dir.png", "text": "x"}, "does not exist")


def cmyk_jpeg():
    buf = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(buf, format="JPEG")  # pure red in ink
    return buf.getvalue()


def palette_with_transparency():
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    return png(im, transparency=0)


def animated_gif():
    frames = [Image.new("RGB", (8, 8), c) for c in ((0, 200, 0), (0, 0, 200))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def llava_record(tmp, convo, message, **row):
    (tmp / "img").mkdir(exist_ok=True)
    (tmp / "img" / "good.png").write_bytes(GOOD)
    good = {
        "id": "ok",
        "image": "img/good.png",
        "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}],
    }
    bad = {"id": "bad", "image": "img/good.png", "conversations": convo, **row}
    path = tmp / "llava.json"
    path.write_text(json.dumps([good, bad]))
    with pytest.raises(BadRecord, match=rf"llava\.json\[1\]: .*{message}"):
        DATASETS["llava-json"](path=str(path))
    with pytest.warns(UserWarning):
        ds = DATASETS["llava-json"](path=str(path), skip_bad=True)
    assert len(ds) == 1 and ds.skipped == 1


def turns(*values):
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


def shard_case(samples, message, lazy=False, skipped=1):
    """A shard whose one bad sample (key b) is named strictly and skipped and counted under skip_bad."""

    def case(tmp):
        with ShardWriter(tmp / "s") as w:
            for key, image, meta in samples:
                w.write(key, image, meta)
        with pytest.raises(BadRecord, match=rf"shard-000000\.tar:b.*{message}"):
            ds = DATASETS["shards"](path=str(tmp / "s"))
            [ds.load_record(k) for k in range(len(ds))]
        with pytest.warns(UserWarning):
            ds = DATASETS["shards"](path=str(tmp / "s"), skip_bad=True)
            [ds[k] for k in range(len(ds))]
        assert ds.skipped == skipped

    return case


def shard_without_json(tmp):
    (tmp / "s").mkdir()
    with tarfile.open(tmp / "s" / "shard-000000.tar", "w") as tar:
        for name, data in (("a.png", GOOD), ("a.json", b'{"text": "ok"}'), ("b.png", GOOD)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BadRecord, match=r"shard-000000\.tar:b: no \.json member"):
        DATASETS["shards"](path=str(tmp / "s"))


def truncated_shard(tmp):
    with ShardWriter(tmp / "s") as w:
        w.write("a", GOOD, {"text": "kept"})
        w.write("b", GOOD, {"text": "cut"})
    shard = tmp / "s" / "shard-000000.tar"
    with tarfile.open(shard) as tar:
        cut = tar.getmember("b.png").offset_data + 20
    shard.write_bytes(shard.read_bytes()[:cut])  # inside b's image
    with pytest.warns(UserWarning, match="truncated or corrupt"):
        ds = DATASETS["shards"](path=str(shard), skip_bad=True)
    assert [ds[k]["text"] for k in range(len(ds))] == ["kept"] and ds.skipped == 1


def missing_manifest(tmp):
    with pytest.raises(FileNotFoundError, match="nope.jsonl does not exist"):
        DATASETS["image-captions"](path=str(tmp / "nope.jsonl"))


def csv_without_caption_column(tmp):
    (tmp / "img").mkdir()
    (tmp / "img" / "good.png").write_bytes(GOOD)
    (tmp / "c.csv").write_text("image,caption\nimg/good.png,ok\n")
    (tmp / "d.csv").write_text("image,notes\nimg/good.png,ok\n")
    assert len(DATASETS["image-captions"](path=str(tmp / "c.csv"))) == 1
    with pytest.raises(BadRecord, match=r"d\.csv:2: text is empty or not a string"):
        DATASETS["image-captions"](path=str(tmp / "d.csv"))


CORPUS = {
    # images (found when decoded, named by manifest line)
    "decompression bomb PNG (48 KB, 20000 x 20000)": bad_image_file(bomb_png(), "decompression bomb"),
    "image over the pixel limit (13000 x 13000)": bad_image_file(
        bomb_png(13000, 13000), "over the limit of 40,000,000"
    ),
    "image over a limit set by MODALIGN_MAX_IMAGE_PIXELS": over_env_limit,
    "upload over a limit set by set_max_image_pixels": over_set_limit,
    "zero-byte image file": bad_image_file(b"", "cannot be decoded"),
    "garbage bytes named .png": bad_image_file(b"\x00\x01garbage" * 10, "cannot be decoded"),
    "HTML page saved as .jpg": bad_image_file(b"<html><body>404</body></html>", "cannot be decoded", "x.jpg"),
    "truncated PNG": bad_image_file(GOOD[: len(GOOD) // 2], "cannot be decoded"),
    "a directory where the image should be": directory_as_image,
    "image path escaping the root (..)": lambda t: bad_caption_record(t, {"image": "../x.png", "text": "x"}, "escapes"),
    "absolute image path": lambda t: bad_caption_record(
        t, {"image": "/etc/passwd", "text": "x"}, "escapes the data root"
    ),
    "symlink out of the data root": symlink_out,
    "missing image file": lambda t: bad_caption_record(t, {"image": "img/none.png", "text": "x"}, "does not exist"),
    "16-bit grey gradient (saturated to 254/255 by PIL)": decoded(
        grey16_gradient(), lambda a: pytest.approx(127.5, abs=0.5) == a.mean()
    ),
    "EXIF-rotated photo": decoded(
        exif_rotated_jpeg(), lambda a: a.shape == (40, 20, 3) and a[5, 10, 0] > 200 > a[35, 10, 0]
    ),
    "CMYK JPEG": decoded(cmyk_jpeg(), lambda a: a[0, 0, 0] > 200 and a[0, 0, 1] < 60),
    "palette PNG with transparency": decoded(palette_with_transparency(), lambda a: (a[0, 0] == [0, 0, 255]).all()),
    "animated GIF (first frame)": decoded(animated_gif(), lambda a: a[0, 0, 1] > 150 and a[0, 0, 2] < 50),
    # captions manifests (found when the manifest is read)
    "empty caption": lambda t: bad_caption_record(t, {"image": "img/good.png", "text": " "}, "text is empty"),
    "caption that is a number": lambda t: bad_caption_record(t, {"image": "img/good.png", "text": 7}, "not a string"),
    "caption holding <image>": lambda t: bad_caption_record(
        t, {"image": "img/good.png", "text": "a <image>"}, "<image>"
    ),
    "non-UTF-8 bytes in a line": lambda t: bad_caption_record(
        t, b'{"image": "img/good.png", "text": "\xff\xfe"}', "bytes are not UTF-8"
    ),
    "invalid JSON line": lambda t: bad_caption_record(t, "{not json", "not a JSON object"),
    "JSON line that is a list": lambda t: bad_caption_record(t, "[1, 2]", "not a JSON object"),
    "record without an image column": lambda t: bad_caption_record(t, {"text": "x"}, "no image column"),
    "label that is not an integer": lambda t: bad_caption_record(
        t, {"image": "img/good.png", "text": "x", "label": "cat"}, "label 'cat' is not an integer"
    ),
    "CSV without a caption column": csv_without_caption_column,
    "missing manifest file": missing_manifest,
    # LLaVA conversations (found when the file is read)
    "human-only conversation": lambda t: llava_record(t, turns("Q?"), "no answer"),
    "<image> inside an answer": lambda t: llava_record(t, turns("Q?", "see <image>"), r"turn 1 \(an answer\)"),
    "turns not alternating": lambda t: llava_record(t, turns("Q?") * 2, "turn 1 must be from 'gpt'"),
    "two <image> for one image": lambda t: llava_record(t, turns("<image><image> Q?", "A"), "2 <image> markers"),
    "turn value not a string": lambda t: llava_record(
        t, [{"from": "human", "value": 3}, {"from": "gpt", "value": "A"}], "not a string"
    ),
    "empty conversation": lambda t: llava_record(t, [], "non-empty list"),
    "conversation without its image": lambda t: llava_record(t, turns("Q?", "A"), "no image", image=None),
    # tar shards
    "shard sample without a .json member": shard_without_json,
    "shard sample with invalid JSON": shard_case(
        [("a", GOOD, {"text": "ok"}), ("b", GOOD, "x")], "expected a JSON object"
    ),
    "shard conversation that is malformed": shard_case(
        [("a", GOOD, {"conversations": turns("Q?", "A")}), ("b", GOOD, {"conversations": turns("Q?")})], "no answer"
    ),
    "shard caption holding <image>": shard_case(
        [("a", GOOD, {"text": "ok"}), ("b", GOOD, {"text": "<image>"})], "<image>"
    ),
    "decompression bomb in a shard": shard_case(
        [("a", GOOD, {"text": "ok"}), ("b", bomb_png(), {"text": "x"})], "bomb"
    ),
    "truncated shard": truncated_shard,
}


@pytest.mark.parametrize("kind", list(CORPUS))
def test_bad_input(kind, tmp_path, request):
    case = CORPUS[kind]
    if "monkeypatch" in case.__code__.co_varnames[: case.__code__.co_argcount]:
        case(tmp_path, request.getfixturevalue("monkeypatch"))
    else:
        case(tmp_path)
