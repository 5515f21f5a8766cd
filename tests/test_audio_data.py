"""Audio data: espeak-ng synthesis (cached), the spoken and sounds worlds' ground truth, and the audio readers."""

import json

import numpy as np
import pytest
import soundfile as sf
from tiny_audio import tone

import modalign as ma
from modalign.data.audio_io import AudioError
from modalign.data.audio_readers import AudioCaptions, PocketSphinxClips
from modalign.data.records import BadRecord
from modalign.data.speech import Voice, synthesize
from modalign.data.worlds.sounds import LEVELS, SoundWorld
from modalign.data.worlds.spoken import HELDOUT_VOICES, TRAIN_VOICES, SpokenWorld


def test_speech_is_synthesised_once_and_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("MODALIGN_CACHE", str(tmp_path))
    a = synthesize("a red circle", Voice("en-us+f2", 150, 40))
    assert a.dtype == np.float32 and 0.5 < len(a) / 16000 < 3 and np.abs(a).max() > 0.05
    assert len(list(tmp_path.rglob("*.wav"))) == 1
    assert np.array_equal(synthesize("a red circle", Voice("en-us+f2", 150, 40)), a)  # read back, the same samples
    assert not np.array_equal(synthesize("a red circle", Voice("en-us+f2", 200, 40)), a)  # faster, another clip
    with pytest.raises(AudioError, match="no variant"):
        synthesize("hi", Voice("en-us+nosuchvariant"))
    with pytest.raises(AudioError, match="MBROLA"):
        synthesize("hi", Voice("mb-en1"))
    with pytest.raises(AudioError, match="empty"):
        synthesize("  ", Voice("en-us"))


def test_spoken_world_items_voices_and_determinism():
    assert not set(TRAIN_VOICES) & set(HELDOUT_VOICES)
    train = SpokenWorld(task="caption", n=3, split="train")
    test = SpokenWorld(task="caption", n=3, split="test")
    assert train.voices == TRAIN_VOICES and test.voices == HELDOUT_VOICES  # "auto": held-out voices off train
    item = train[1]
    assert set(item) >= {"id", "audio", "text"} and item["text"] == ma.dataset("shapes", n=3)[1]["text"]
    assert np.array_equal(SpokenWorld(task="caption", n=9, split="train")[1]["audio"], item["audio"])  # n-invariant
    vqa = SpokenWorld(task="vqa", n=2, split="test")[0]
    assert vqa["question_audio"].ndim == 1 and vqa["image"].size == (64, 64) and "audio" not in vqa
    convo = SpokenWorld(task="instruct", n=20, split="train", spoken_p=1.0, short_p=1.0)[3]
    said = sum(t["value"].count("<audio>") for t in convo["conversations"])
    assert said == len(convo["audios"]) >= 1 and convo["conversations"][0]["value"].startswith("<image>\n<audio>")


def test_sound_world_ground_truth_is_in_the_samples():
    world = SoundWorld(task="caption", n=30, split="test")
    for i in range(5):
        events, clip = world.events(i), world.audio(i)
        assert abs(len(clip) / 16000 - (events[-1]["start"] + events[-1]["seconds"])) < 0.31
        for e in events:
            a, b = int(e["start"] * 16000), int((e["start"] + e["seconds"]) * 16000)
            inside = np.abs(clip[a:b]).mean()
            assert inside > 10 * np.abs(clip[: int(events[0]["start"] * 16000) - 10]).mean()  # louder than quiet
            if e["kind"] == "beep":
                spectrum = np.abs(np.fft.rfft(clip[a:b]))
                peak = np.fft.rfftfreq(b - a, 1 / 16000)[spectrum.argmax()]
                assert abs(peak - e["hz"]) < 20 and LEVELS[e["level"]][0] <= e["hz"] <= LEVELS[e["level"]][1]
    vqa = SoundWorld(task="vqa", n=40)
    for idx in range(len(vqa)):
        rec = vqa.record(idx)
        events = vqa.events(int(rec["id"][-6:]))
        if rec["question"] == "How many sounds are there?":
            assert rec["answer"] == str(len(events))
        if rec["qtype"] == "higher":
            assert rec["answer"] in ("yes", "no")
    assert SoundWorld(task="classify", n=5)[0]["label"] in (0, 1, 2)


def test_audio_captions_librispeech_clotho_and_jsonl(tmp_path):
    spk = tmp_path / "ls" / "19" / "198"
    spk.mkdir(parents=True)
    sf.write(spk / "19-198-0000.flac", tone(0.5), 16000)
    sf.write(spk / "19-198-0001.flac", tone(0.7), 16000)
    (spk / "19-198.trans.txt").write_text("19-198-0000 HELLO THERE\n19-198-0001 GOOD MORNING\n")
    ls = AudioCaptions(str(tmp_path / "ls"))
    assert len(ls) == 2 and ls[1]["text"] == "good morning" and len(ls[1]["audio"]) == 11200
    sf.write(tmp_path / "a.wav", tone(0.3), 16000)
    (tmp_path / "clotho.csv").write_text("file_name,caption_1,caption_2\na.wav,a beep,a short tone\n")
    clotho = AudioCaptions(str(tmp_path / "clotho.csv"))
    assert [clotho[i]["text"] for i in range(2)] == ["a beep", "a short tone"] and clotho[0]["id"] == clotho[1]["id"]
    rows = [{"audio": "a.wav", "text": "beep"}, {"audio": "missing.wav", "text": "x"}, {"audio": "a.wav", "text": ""}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(BadRecord, match="c.jsonl:2: audio file .* does not exist"):
        AudioCaptions(str(tmp_path / "c.jsonl"))
    with pytest.warns(UserWarning, match="skipped"):
        kept = AudioCaptions(str(tmp_path / "c.jsonl"), skip_bad=True)
    assert len(kept) == 1 and kept.skipped == 2
    (tmp_path / "bad.wav").write_bytes(b"garbage" * 10)
    (tmp_path / "d.jsonl").write_text(json.dumps({"audio": "bad.wav", "text": "x"}) + "\n")
    with pytest.raises(BadRecord, match="cannot be decoded"):
        AudioCaptions(str(tmp_path / "d.jsonl"))[0]


def test_pocketsphinx_clips_have_their_transcripts():
    clips = PocketSphinxClips()
    assert len(clips) == 12
    first = clips[0]
    assert first["text"] == "ten of clubs" and abs(first["meta"]["seconds"] - 1.095) < 0.01
    assert {clips[i]["id"] for i in range(len(clips))} >= {"goforward", "dhd.2934z"}
