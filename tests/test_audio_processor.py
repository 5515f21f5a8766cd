"""Whisper's log-mel (equal to transformers' and faster-whisper's extractors) and the processor's refusals."""

import numpy as np
import pytest
import torch
from tiny_audio import tone

from modalign.data.audio_io import AudioError
from modalign.encoders.audio_processor import AudioProcessor
from modalign.encoders.logmel import log_mel, mel_filters

SPEECH = "/usr/share/pocketsphinx/test/data/cards/001.wav"


def _clip():
    rng = np.random.default_rng(0)
    return (tone(2.3, 330) + 0.05 * rng.standard_normal(int(2.3 * 16000))).astype(np.float32)


def test_log_mel_equals_transformers_whisper_extractor():
    from transformers import WhisperFeatureExtractor

    clip = _clip()
    ref = WhisperFeatureExtractor(feature_size=80)(clip, sampling_rate=16000, return_tensors="np").input_features[0]
    ours = AudioProcessor(30.0)([clip])["input_features"][0].numpy()
    assert ours.shape == ref.shape == (80, 3000)
    assert np.abs(ours - ref).max() < 1e-4


def test_log_mel_matches_faster_whisper_and_its_filterbank():
    from faster_whisper.feature_extractor import FeatureExtractor

    fe = FeatureExtractor(feature_size=80)
    assert np.abs(mel_filters(80) - fe.mel_filters).max() < 1e-6
    clip = np.pad(_clip(), (0, 480000 - len(_clip())))
    ref = fe(clip)[:, :3000]
    ours = log_mel(torch.from_numpy(clip))[0].numpy()
    assert np.abs(ours - ref).max() < 1e-4


def test_fixed_window_and_own_length():
    clip = _clip()  # 2.3 s = 230 frames
    fixed = AudioProcessor(10.0)([clip, tone(0.5)])
    assert fixed["input_features"].shape == (2, 80, 1000) and fixed["frames"].tolist() == [230, 50]
    own = AudioProcessor(None, frame_multiple=2)([clip, tone(0.5)])
    assert own["input_features"].shape == (2, 80, 230) and own["frames"].tolist() == [230, 50]
    alone = AudioProcessor(None, frame_multiple=2)([tone(0.5)])["input_features"][0]
    assert torch.equal(own["input_features"][1, :, :50], alone)  # a clip's frames never depend on the batch


def test_refusals_say_why():
    p = AudioProcessor(10.0)
    with pytest.raises(AudioError, match="empty"):
        p([np.zeros(0, np.float32)])
    with pytest.raises(AudioError, match="silent"):
        p([np.zeros(16000, np.float32)])
    with pytest.raises(AudioError, match="longer than"):
        p([tone(11.0)])
    with pytest.raises(AudioError, match="NaN"):
        p([np.full(100, np.nan, np.float32)])
    assert AudioProcessor(10.0, trim=True)([tone(11.0)])["frames"].tolist() == [1000]
    assert AudioProcessor(10.0, allow_silent=True)([np.zeros(1600, np.float32)])["frames"].tolist() == [10]


def test_paths_are_loaded():
    out = AudioProcessor(None)([SPEECH])
    assert out["samples"].tolist() == [17526]  # 1.095 s of 16 kHz speech
