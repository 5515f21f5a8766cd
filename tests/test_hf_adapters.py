"""Models modalign did not train: tiny random Hugging Face checkpoints evaluated through the suites and the CLI, and
an exported modalign VLM scoring exactly as the native one."""

import json

import bench_files as bf
import hf_tiny
import pytest
import torch
from test_export_llava import _clip_dir, _vlm
from test_vlm_tiny_parts import images

from modalign.cli import main
from modalign.data import DATASETS
from modalign.eval.suites import SUITES
from modalign.models import load_model
from modalign.models.export_llava import export_llava_hf
from modalign.models.hf_adapters import HFDualEncoder, HFVisionLanguageModel
from modalign.registry import ConfigError

GENERATIVE = ["llava", "idefics2", "idefics3", "blip-2"]
PROMPTS = ["Is there a dog in the image?", "What color is it?", "two", "How many dogs? Answer the question."]


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {kind: build(root / kind) for kind, build in hf_tiny.BUILDERS.items()}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return {
        "vqav2": bf.vqav2(root / "vqav2"),
        "pope": bf.pope(root / "pope"),
        "captions": bf.coco_captions(root / "coco"),
        "sugarcrepe": bf.sugarcrepe(root / "sugarcrepe"),
    }


def vqav2(files):
    f = files["vqav2"]
    return DATASETS["vqav2"](questions=f["questions"], annotations=f["annotations"], images=f["images"])


def pope(files):
    f = files["pope"]
    return DATASETS["pope"](questions=[f["random"], f["adversarial"]], images=f["images"])


def test_load_model_tells_hf_checkpoints_from_modalign_saves(hf_dirs, tmp_path):
    for kind in GENERATIVE:
        assert isinstance(load_model(hf_dirs[kind]), HFVisionLanguageModel)
    for kind in ("clip", "siglip"):
        assert isinstance(load_model(hf_dirs[kind]), HFDualEncoder)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(ConfigError, match="model_type 'whisper' has no adapter; supported: llava"):
        load_model(tmp_path)


@pytest.mark.parametrize("kind", GENERATIVE)
def test_a_batch_computes_what_each_row_computes_alone(hf_dirs, kind):
    model = load_model(hf_dirs[kind])
    ims = images(4, seed=3)
    batched = model.generate(ims, PROMPTS, max_new_tokens=5)
    assert batched == [model.generate([im], [p], max_new_tokens=5)[0] for im, p in zip(ims, PROMPTS)]
    texts = ["yes", "a red circle", "no", "two dogs"]
    scores = model.score(ims, texts, PROMPTS)
    alone = torch.cat([model.score([im], [t], [p]) for im, t, p in zip(ims, texts, PROMPTS)])
    assert torch.allclose(scores, alone, atol=1e-4) and (scores < 0).all()


def test_llava_template_takes_typed_parts_and_blip2_the_plain_prompt(hf_dirs):
    llava = load_model(hf_dirs["llava"])
    assert llava.typed_content and llava.render("Q?") == "USER: <image>\nQ? ASSISTANT:"
    assert load_model(hf_dirs["blip-2"]).render("Question: Q? Answer:") == "Question: Q? Answer:"
    assert load_model(hf_dirs["idefics3"]).render("Q?") == "<|im_start|>User:<image>Q?<end_of_utterance>\nAssistant:"


@pytest.mark.parametrize("kind", GENERATIVE)
def test_generative_checkpoints_run_the_suites(hf_dirs, files, kind):
    model = load_model(hf_dirs[kind])
    r = SUITES["vqa"](model, vqav2(files), progress=False)
    assert 0 <= r["metrics"]["accuracy"] <= 1 and len(r["settings"]["files"]) == 2
    p = SUITES["pope"](model, pope(files), mode="likelihood", progress=False)
    assert set(p["figures"]["pope_samplers"]) == {"random", "adversarial"}
    c = SUITES["compositional"](model, DATASETS["sugarcrepe"](**files["sugarcrepe"]), progress=False)
    assert set(c["metrics"]) == {"macro", "overall", "acc_replace-att", "acc_swap-obj"}


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_contrastive_checkpoints_embed_as_their_own_forward(hf_dirs, files, kind):
    from transformers import AutoModel, AutoProcessor

    model = load_model(hf_dirs[kind])
    ims, texts = images(2), ["a red circle", "a blue square"]
    hf, proc = AutoModel.from_pretrained(hf_dirs[kind]).eval(), AutoProcessor.from_pretrained(hf_dirs[kind])
    padding = {"padding": "max_length", "max_length": 16} if kind == "siglip" else {"padding": True}
    inputs = proc(text=texts, images=ims, return_tensors="pt", **padding)
    if kind == "siglip":
        inputs.pop("attention_mask", None)  # SigLIP's text tower reads padded ids without a mask
    with torch.no_grad():
        out = hf(**inputs)
    assert torch.allclose(model.embed_images(ims), out.image_embeds, atol=1e-5)
    assert torch.allclose(model.embed_texts(texts), out.text_embeds, atol=1e-5)
    assert float(model.logit_scale) == pytest.approx(float(hf.logit_scale.detach().exp()))
    cap = files["captions"]
    r = SUITES["retrieval"](model, DATASETS["coco-captions"](**cap), progress=False)
    assert 0 <= r["metrics"]["t2i_R@1"] <= 1
    c = SUITES["compositional"](model, DATASETS["sugarcrepe"](**files["sugarcrepe"]), progress=False)
    assert c["settings"]["score"] == "cosine"


def test_an_exported_modalign_vlm_scores_exactly_as_the_native_model(tmp_path, files):
    native = _vlm({"name": "hf", "path": _clip_dir(tmp_path), "feature_layer": -2})
    with torch.no_grad():  # sharpen the random LM so greedy choices are not near-ties
        native.lm.lm_head.weight.mul_(8)
    exported = load_model(export_llava_hf(native, tmp_path / "llava"))
    assert isinstance(exported, HFVisionLanguageModel) and not exported.typed_content
    for suite, data, params in [
        ("vqa", vqav2(files), {}),
        ("pope", pope(files), {}),
        ("pope", pope(files), {"mode": "likelihood"}),
    ]:
        ours = SUITES[suite](native, data, n_gallery=100, progress=False, **params)
        theirs = SUITES[suite](exported, data, n_gallery=100, progress=False, **params)
        assert ours["metrics"] == theirs["metrics"]
        if params.get("mode") != "likelihood":  # likelihood samples print log-probabilities to 3 places
            assert [s["answer"] for s in ours["samples"]] == [s["answer"] for s in theirs["samples"]]
        assert len(ours["samples"]) == len(data)


def test_modalign_eval_takes_hf_directories(hf_dirs, files, tmp_path, capsys):
    v, p, cap = files["vqav2"], files["pope"], files["captions"]
    out = tmp_path / "llava-eval"
    code = main(
        [
            "eval",
            str(hf_dirs["llava"]),
            "--suite",
            "vqa,pope",
            "--data",
            f"vqav2:questions={v['questions']},annotations={v['annotations']},images={v['images']}",
            "--data",
            f"pope:questions=[{p['random']},{p['adversarial']}],images={p['images']}",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["suites"]) == {"vqa", "pope"} and results["meta"]["model_class"] == "HFVisionLanguageModel"
    assert results["suites"]["pope"]["settings"]["files"][0]["path"] == str(p["random"])
    out = tmp_path / "clip-eval"
    data = f"coco-captions:annotations={cap['annotations']},images={cap['images']}"
    assert (
        main(["eval", str(hf_dirs["clip"]), "--suite", "retrieval", "--data", data, "--out", str(out), "--quiet"]) == 0
    )
    assert "t2i_R@1" in json.loads((out / "results.json").read_text())["suites"]["retrieval"]["metrics"]
    assert (out / "report.html").exists()
