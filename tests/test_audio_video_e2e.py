"""End to end on tiny parts: `modalign list` shows the audio and video families; a CLAP model and a sound-QA model
learn from the built-in worlds through the one trainer; a video model trains and takes the temporal probe."""

import pytest
import torch

import modalign as ma
from modalign.cli import main as cli_main

LM = {"name": "tiny-llama", "hidden_size": 48, "num_layers": 2, "num_heads": 4, "vocab_size": 300}


def test_list_shows_audio_and_video_components(capsys):
    table = ma.components()
    assert {"whisper-tiny", "whisper-base", "conv", "hf"} <= set(table["audio"])
    assert "frames" in table["video"]
    assert {"spoken", "sounds", "motion", "audio-captions", "pocketsphinx"} <= set(table["datasets"])
    assert {"audio_retrieval", "spoken_vqa", "transcription", "temporal"} <= set(table["suites"])
    assert cli_main(["list", "audio"]) == 0
    out = capsys.readouterr().out
    assert "whisper-tiny(" in out and "conv(" in out


@pytest.mark.slow
def test_clap_learns_sound_captions(tmp_path):
    torch.manual_seed(0)
    dual = ma.DualEncoder(
        audio={"name": "conv", "hidden_size": 32, "strides": [4, 4]},
        text={"name": "transformer", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_length": 32},
        embed_dim=32,
    )
    data = ma.dataset("sounds", task="caption", n=64, max_sounds=1)
    before = ma.evaluate(dual, "audio_retrieval", data, progress=False)["metrics"]["a2t_R@5"]
    ma.train(
        dual,
        [
            ma.Stage(
                name="clap",
                objective="contrastive",
                data=data,
                steps=60,
                batch_size=32,
                lr=3e-3,
                train=["audio", "text", "head"],
            )
        ],
        tmp_path,
        progress=False,
    )
    after = ma.evaluate(dual, "audio_retrieval", data, progress=False)["metrics"]["a2t_R@5"]
    assert after > max(0.5, before + 0.2)  # single-sound captions: 18 distinct texts over 64 clips


@pytest.mark.slow
def test_a_sound_qa_model_learns_its_answers(tmp_path):
    torch.manual_seed(0)
    model = ma.VisionLanguageModel(
        vision=None,
        connector=None,
        lm=LM,
        text_corpus=list(ma.dataset("sounds", task="instruct", n=200).texts()),
        audio={"name": "conv", "hidden_size": 32, "strides": [4, 4]},
    )
    data = ma.dataset("sounds", task="instruct", n=200, max_sounds=3)
    probe = model.collate([data[i] for i in range(16)])
    with torch.no_grad():
        before = float(model.eval().training_loss(probe, "instruct")["loss"])
    ma.train(
        model,
        [
            ma.Stage(
                name="qa",
                objective="instruct",
                data=data,
                steps=80,
                batch_size=16,
                lr=3e-3,
                train=["audio", "audio_connector", "lm"],
            )
        ],
        tmp_path,
        progress=False,
    )
    with torch.no_grad():
        after = float(model.eval().training_loss(probe, "instruct")["loss"])
    assert after < 0.35 * before  # the answers' tokens, learned from the clips' questions
    qa = ma.evaluate(model, "vqa", ma.dataset("sounds", task="vqa", n=30, max_sounds=3), progress=False)
    assert {"acc_count", "acc_higher", "acc_kind", "acc_length"} <= set(qa["metrics"])


@pytest.mark.slow
def test_a_video_model_trains_and_takes_the_temporal_probe(tmp_path):
    torch.manual_seed(0)
    data = ma.dataset("motion", task="instruct", n=40, frames=4, image_size=32, max_objects=2)
    model = ma.VisionLanguageModel(
        vision=None,
        connector=None,
        lm=LM,
        text_corpus=list(data.texts()),
        video={
            "name": "frames",
            "vision": {"name": "efficientnet-lite0", "image_size": 32, "feature_block": 5},
            "num_frames": 4,
        },
        video_connector={"name": "perceiver", "num_latents": 4, "heads": 2, "max_frames": 4},
    )
    ma.train(
        model,
        [ma.Stage(name="qa", objective="instruct", data=data, steps=10, batch_size=8, train=["video_connector", "lm"])],
        tmp_path,
        progress=False,
    )
    r = ma.evaluate(
        model, "temporal", ma.dataset("motion", task="vqa", n=8, frames=4, image_size=32, max_objects=2), progress=False
    )
    assert {"original_accuracy", "reversed_accuracy", "shuffled_accuracy", "drop_shuffled"} <= set(r["metrics"])
    loaded = ma.load(tmp_path / "final")
    assert set(loaded.components()) == {"lm", "video", "video_connector"}
