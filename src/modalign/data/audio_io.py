"""Audio files in, mono float32 waveforms at 16 kHz out: soundfile (libsndfile) + soxr, PyAV for everything else.

The sample interface carries audio as a 1-D float32 numpy array at `AUDIO_RATE` (16 kHz, mono, in [-1, 1]);
`load_audio` makes one from any file: soundfile reads WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF, ...; containers
libsndfile does not know (m4a, aac, mp4, webm) are decoded by PyAV (FFmpeg inside the `av` wheel). Several channels
are averaged, other rates resampled with soxr ("HQ"). `load_raw_pcm` reads headerless 16-bit little-endian PCM.

Every failure is an `AudioError` (a ValueError) that names the file and says what is wrong: missing, empty,
undecodable, zero samples, a WAV whose data chunk is cut short (libsndfile itself reads the remaining samples without
a word), or no audio stream in a container.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

AUDIO_RATE = 16000  # samples per second of every waveform in an item
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "aiff", "aif", "au", "m4a", "aac", "webm", "mp4", "raw")
_STREAMING_SIZES = (0, 0xFFFFFFFF, 0x7FFFF000)  # data sizes a writer to a pipe puts in a WAV header


class AudioError(ValueError):
    """An audio file or waveform cannot be used; the message names it and what is wrong."""


def to_mono(samples: np.ndarray, rate: int, target: int | None = AUDIO_RATE) -> np.ndarray:
    """[n] or [n, channels] samples -> float32 mono [n'] at `target` Hz (None keeps the rate)."""
    a = np.asarray(samples, dtype=np.float32)
    if a.ndim == 2:
        a = a.mean(axis=1)
    if a.ndim != 1:
        raise AudioError(f"audio must be [samples] or [samples, channels], got shape {a.shape}")
    if target is not None and rate != target and a.size:
        import soxr

        a = soxr.resample(a, rate, target, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(a, dtype=np.float32)


def wav_declared_frames(path: Path) -> int | None:
    """Frames a WAV header says its data chunk holds (None: not a plain RIFF WAV, or written to a pipe)."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = None
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = fh.read(size)
                if len(fmt) < 16:
                    return None
                block = struct.unpack("<H", fmt[12:14])[0]  # bytes per frame
                fh.read(size % 2)
            elif cid == b"data":
                if size in _STREAMING_SIZES or not block:
                    return None
                return size // block
            else:
                fh.seek(size + size % 2, 1)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"audio file {path} does not exist")
    if path.is_dir():
        raise AudioError(f"{path} is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    """(samples, rate), or None when libsndfile does not know the format."""
    import soundfile as sf

    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except sf.LibsndfileError as err:
        if "Format not recognised" in str(err) or "unknown format" in str(err).lower():
            return None
        raise AudioError(f"{path}: cannot be decoded ({err})") from err
    declared = wav_declared_frames(path) if path.suffix.lower() == ".wav" else None
    if declared is not None and len(samples) < declared:
        raise AudioError(
            f"{path}: the file is cut short: its header declares {declared} frames but only {len(samples)} are "
            "there (an interrupted copy or download?)"
        )
    return samples, int(rate)


def _read_av(path: Path, target: int | None) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: no audio stream in the file")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
            chunks = []
            for frame in container.decode(container.streams.audio[0]):
                chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(frame)]
            chunks += [r.to_ndarray().reshape(-1) for r in resampler.resample(None)]  # flush
    except (av.FFmpegError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise AudioError(f"{path}: cannot be decoded as audio ({type(err).__name__}: {err})") from err
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def load_audio(path: str | Path, rate: int | None = AUDIO_RATE) -> np.ndarray:
    """Mono float32 samples of an audio file, resampled to `rate` (None: the file's own rate, soundfile formats)."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() == ".raw":
        return load_raw_pcm(path, AUDIO_RATE, rate)
    got = _read_soundfile(path)
    if got is not None:
        audio = to_mono(got[0], got[1], rate)
    else:
        audio = _read_av(path, rate)
    if audio.size == 0:
        raise AudioError(f"{path}: the file decodes to zero samples")
    return audio


def load_raw_pcm(path: str | Path, rate_in: int = AUDIO_RATE, rate: int | None = AUDIO_RATE) -> np.ndarray:
    """Headerless 16-bit signed little-endian mono PCM (e.g. pocketsphinx's `.raw` clips)."""
    path = Path(path)
    _check_file(path)
    if path.stat().st_size % 2:
        raise AudioError(f"{path}: an odd number of bytes is not 16-bit PCM")
    audio = np.fromfile(path, dtype="<i2").astype(np.float32) / 32768.0
    return to_mono(audio, rate_in, rate)


def write_wav(path: str | Path, audio: np.ndarray, rate: int = AUDIO_RATE) -> Path:
    """A 16-bit PCM WAV of a float waveform (clipped to [-1, 1])."""
    import soundfile as sf

    path = Path(path)
    sf.write(str(path), np.clip(np.asarray(audio, dtype=np.float32), -1, 1), rate, subtype="PCM_16")
    return path


def as_waveform(clip) -> np.ndarray:
    """An item's audio as float32 samples at 16 kHz: an array is taken as it is, a path is loaded."""
    if isinstance(clip, (str, Path)):
        return load_audio(clip)
    audio = np.asarray(clip, dtype=np.float32)
    if audio.ndim != 1:
        raise AudioError(
            f"an item's audio must be a mono waveform [samples] at {AUDIO_RATE} Hz, got shape {audio.shape}"
        )
    return audio
