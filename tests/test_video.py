"""Video: file writing, reading and frame sampling (PyAV) with their errors; the motion world's tracks and answers;
the frames tower's time embeddings; the temporal probe's reorderings; LLaVA records with audio and video."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_audio import tone

from modalign.data.audio_io import write_wav
from modalign.data.readers import LlavaJson
from modalign.data.records import BadRecord
from modalign.data.video_io import VideoError, read_frames, sample_frames, write_video
from modalign.data.worlds.motion import MotionWorld
from modalign.encoders.video import VideoTower, sincos_1d, uniform_indices
from modalign.eval.suites.video import reorder, shuffled_order


def _frames(n, size=(32, 32)):
    return [Image.new("RGB", size, (10 * k, 255 - 10 * k, 40)) for k in range(n)]


def test_write_read_and_sample(tmp_path):
    path = write_video(tmp_path / "v.mp4", _frames(16), fps=8)
    frames, times = read_frames(path)
    assert len(frames) == 16 and frames[0].size == (32, 32) and abs(times[-1] - 15 / 8) < 1e-6
    assert np.abs(np.asarray(frames[5], float) - np.asarray(_frames(16)[5], float)).mean() < 4
    picked = sample_frames(path, num_frames=4)
    assert [round(np.asarray(f)[..., 0].mean() / 10) for f in picked] == [0, 5, 10, 15]
    assert (
        len(sample_frames(path, num_frames=None, fps=2)) == 4
        and len(sample_frames(path, None, fps=4, max_frames=3)) == 3
    )
    odd = write_video(tmp_path / "odd.mp4", _frames(3, (31, 17)))
    assert read_frames(odd)[0][0].size == (32, 18)  # H.264 needs even sides


def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "none.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        read_frames(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(VideoError, match="cannot be decoded"):
        read_frames(tmp_path / "junk.mp4")
    with pytest.raises(VideoError, match="no video stream"):
        read_frames(write_wav(tmp_path / "a.wav", tone(0.2)))
    with pytest.raises(ValueError, match="not both"):
        sample_frames(write_video(tmp_path / "v.mp4", _frames(2)), num_frames=2, fps=1)


def test_motion_world_tracks_match_pixels_and_answers():
    world = MotionWorld(task="vqa", n=60, split="test")
    for idx in range(len(world)):
        rec = world.record(idx)
        clip = int(rec["id"][-6:])
        obj = next(o for o in world.track(clip) if o["shape"] in rec["question"])
        if rec["qtype"] == "motion":
            (x0, y0, *_), (x1, y1, *_) = obj["boxes"][0], obj["boxes"][-1]
            moved = {"left": x0 - x1, "right": x1 - x0, "up": y0 - y1, "down": y1 - y0}
            assert max(moved, key=moved.get) == rec["answer"] and moved[rec["answer"]] > 10
        elif rec["qtype"] == "change":
            assert obj["colors"][-1] == rec["answer"] != obj["colors"][0]
        elif rec["qtype"] == "appear":
            assert obj["visible"][0] == (rec["answer"] == "disappear") and obj["visible"][-1] != obj["visible"][0]
    frames = world.render_clip(0)
    obj = world.track(0)[0]
    t = next(t for t in range(world.frames) if obj["visible"][t])
    cx, cy = [(a + b) // 2 for a, b in zip(obj["boxes"][t][:2], obj["boxes"][t][2:])]
    from modalign.data.worlds.shapes.vocab import COLORS

    assert frames[t].getpixel((cx, cy)) == COLORS[obj["colors"][t]]  # the centre pixel shows the object


def test_video_tower_time_embeddings_and_sampling():
    tower = VideoTower(8, num_frames=4, pool="mean", norm=False)
    feats = torch.zeros(1, 3, 5, 8)
    out = tower(feats, torch.tensor([[1, 1, 0]]))
    assert out.tokens.shape == (1, 3, 8) and out.mask.tolist() == [[1, 1, 0]]
    assert torch.allclose(out.tokens[0], sincos_1d(4, 8)[:3])  # zero features: what is left is each frame's place
    assert uniform_indices(10, 4) == [0, 3, 6, 9] and len(tower.sample(_frames(9))) == 4
    with pytest.raises(ValueError, match="built for 4 frames"):
        tower(torch.zeros(1, 5, 2, 8), torch.ones(1, 5))


def test_video_tower_deltas_carry_each_places_change():
    tower = VideoTower(4, num_frames=3, norm=False, time_init="zeros", deltas=True)
    feats = torch.tensor([[[[0.0, 0, 0, 0]], [[1.0, 0, 0, 0]], [[1.0, 2, 0, 0]]]])  # [1, 3 frames, 1 token, 4]
    out = tower(feats, torch.ones(1, 3))
    assert tower.hidden_size == 8 and out.tokens.shape == (1, 3, 8)
    assert out.tokens[0, :, 4:].tolist() == [[0, 0, 0, 0], [1, 0, 0, 0], [0, 2, 0, 0]]  # frame minus the one before
    assert torch.equal(out.tokens[0, :, :4], feats[0, :, 0])
    padded = tower(feats, torch.tensor([[1, 1, 0]]))  # a missing frame has no change, not "everything vanished"
    assert padded.tokens[0, 2, 4:].abs().sum() == 0 and padded.mask.tolist() == [[1, 1, 0]]


def test_temporal_reorderings():
    rng = np.random.default_rng(0)
    perm = shuffled_order(8, rng)
    assert sorted(perm) == list(range(8)) and sum(p == i for i, p in enumerate(perm)) <= 4
    assert reorder([1, 2, 3], "reversed", rng) == [3, 2, 1]


def test_llava_records_with_audio_and_video(tmp_path):
    write_wav(tmp_path / "q.wav", tone(0.4))
    write_video(tmp_path / "v.mp4", _frames(10))
    _frames(1)[0].save(tmp_path / "i.png")
    rec = {
        "id": "r",
        "image": "i.png",
        "audio": "q.wav",
        "video": "v.mp4",
        "conversations": [{"from": "human", "value": "<image><video><audio>"}, {"from": "gpt", "value": "yes"}],
    }
    (tmp_path / "c.json").write_text(json.dumps([rec]))
    item = LlavaJson(str(tmp_path / "c.json"), num_frames=4)[0]
    assert len(item["audio"]) == 6400 and len(item["video"]) == 4 and item["image"].size == (32, 32)
    rec["audio"] = ["q.wav", "q.wav"]
    (tmp_path / "d.json").write_text(json.dumps([rec]))
    with pytest.raises(BadRecord, match="1 <audio> tokens for 2 audio file"):
        LlavaJson(str(tmp_path / "d.json"))


def test_motion_instruct_conversations_with_and_without_description():
    world = MotionWorld(task="instruct", n=5, split="train")
    plain = MotionWorld(task="instruct", n=5, split="train", describe=False)
    for idx in range(5):
        turns = world.record(idx)["conversations"]
        asks = [t["value"].removeprefix("<video>\n") for t in turns[::2]]
        describe = asks.index("Describe what happens in the video.")
        answers = [t["value"] for t in turns[1::2]]
        assert turns[0]["value"].startswith("<video>\n") and sum("<video>" in t["value"] for t in turns) == 1
        assert asks.count("Describe what happens in the video.") == 1
        assert answers[describe] == world.caption(idx)
        other = plain.record(idx)["conversations"]
        assert len(other) == len(turns) - 2 and not any("Describe" in t["value"] for t in other)
        assert {t["value"].removeprefix("<video>\n") for t in other[::2]} == set(asks) - {asks[describe]}
