"""What the web demo accepts from a page: uploads bounded in bytes and pixels, known formats only, short texts."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFile

from modalign.serve.safety import (
    Refused,
    clean_text,
    decode_upload,
    open_untrusted_image,
    parse_labels,
)


def _png(path, size=(40, 30), mode="RGB", colour=0):
    Image.new(mode, size, colour).save(path)
    return path


def test_a_good_image_is_decoded_to_rgb(tmp_path):
    im = open_untrusted_image(_png(tmp_path / "ok.png", mode="P"))
    assert im.mode == "RGB" and im.size == (40, 30)
    gif = tmp_path / "anim.gif"
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    assert open_untrusted_image(gif).size == (8, 8)


def test_damaged_and_foreign_files_are_refused_with_the_file_name(tmp_path):
    garbage = tmp_path / "bad.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    text = tmp_path / "notes.png"
    text.write_text("hello, not an image")
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(whole, format="PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])  # the header survives, the pixels do not
    tiff = tmp_path / "photo.png"
    Image.new("RGB", (8, 8)).save(tiff, format="TIFF")  # a real image in a format the demo does not parse
    for path in (garbage, text, cut, tiff):
        with pytest.raises(Refused, match=f"Could not read {path.name} as an image"):
            open_untrusted_image(path)


def test_too_many_pixels_are_refused_before_decoding(tmp_path, monkeypatch):
    bomb = _png(tmp_path / "bomb.png", size=(7000, 6000), mode="1")  # 42 Mpx in a few kB
    assert bomb.stat().st_size < 200_000
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    with pytest.raises(Refused, match="7000 x 6000 pixels; images are limited to 40 million"):
        open_untrusted_image(bomb)
    assert decoded == []  # refused from the header, nothing decoded
    monkeypatch.undo()
    with pytest.raises(Refused, match="40 x 30 pixels; images are limited to 100 pixels"):
        open_untrusted_image(_png(tmp_path / "small.png"), max_pixels=100)


def test_too_many_bytes_are_refused(tmp_path):
    path = _png(tmp_path / "ok.png")
    with pytest.raises(Refused, match="uploads are limited to"):
        open_untrusted_image(path, max_bytes=10)
    with pytest.raises(Refused, match="could not be read"):
        open_untrusted_image(tmp_path / "missing.png")


def test_only_files_in_the_upload_folder_are_read(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    inside = _png(uploads / "in.png")
    outside = _png(tmp_path / "out.png")
    assert decode_upload("image", inside, root=uploads).size == (40, 30)
    with pytest.raises(Refused, match="uploaded through the page"):
        decode_upload("image", outside, root=uploads)
    with pytest.raises(Refused, match="uploaded through the page"):
        decode_upload("image", uploads / ".." / "out.png", root=uploads)
    (uploads / "link.png").symlink_to(outside)
    with pytest.raises(Refused, match="uploaded through the page"):
        decode_upload("image", uploads / "link.png", root=uploads)
    with pytest.raises(Refused, match="Upload an image first"):
        decode_upload("image", None, root=uploads)


def test_texts_and_labels_are_bounded():
    assert clean_text("  hi  ", "a question") == "hi"
    with pytest.raises(Refused, match="Type a question first"):
        clean_text("   ", "a question")
    with pytest.raises(Refused, match="A question is 11 characters long; the limit is 10"):
        clean_text("x" * 11, "a question", max_chars=10)
    assert parse_labels("cat, dog\nbird,, cat ") == ["cat", "dog", "bird"]
    with pytest.raises(Refused, match="Type the labels"):
        parse_labels(" , \n")
    with pytest.raises(Refused, match="3 labels given; the limit is 2"):
        parse_labels("a, b, c", max_labels=2)
    with pytest.raises(Refused, match="longer than 5 characters"):
        parse_labels("a, abcdefg", max_chars=5)
