"""Video files in, frames out: decoding and frame sampling with PyAV (FFmpeg inside the `av` wheel).

The sample interface carries a video as a list of PIL RGB frames in time order. `sample_frames(path, num_frames=8)`
takes `num_frames` frames spread evenly over the whole clip (first and last included); `sample_frames(path, fps=2)`
takes the decoded frame nearest to each 1/fps step (`max_frames` caps the count). `write_video` writes frames to a
file (libx264 by default; odd sizes are padded to even, which H.264 needs).

Every failure is a `VideoError` (a ValueError) naming the file: missing, empty, undecodable (PyAV's InvalidDataError
at open or mid-stream), no video stream, or no decodable frame.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

VIDEO_EXTENSIONS = ("mp4", "webm", "mkv", "avi", "mov", "gif", "m4v")


class VideoError(ValueError):
    """A video file cannot be used; the message names it and what is wrong."""


def read_frames(path: str | Path) -> tuple[list[Image.Image], np.ndarray]:
    """Every decoded frame (PIL RGB) and its presentation time in seconds from the first frame."""
    import av

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video file {path} does not exist")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty (0 bytes)")
    frames, times = [], []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream in the file")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                frames.append(frame.to_image().convert("RGB"))
                times.append(float(frame.pts * frame.time_base) if frame.pts is not None else np.nan)
    except (av.FFmpegError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise VideoError(f"{path}: cannot be decoded as video ({type(err).__name__}: {err})") from err
    if not frames:
        raise VideoError(f"{path}: no decodable video frame")
    t = np.asarray(times, dtype=np.float64)
    if np.isnan(t).any():  # a container without timestamps: assume a constant rate
        t = np.arange(len(frames), dtype=np.float64)
    return frames, t - t[0]


def sample_frames(
    path: str | Path, num_frames: int | None = 8, fps: float | None = None, max_frames: int | None = None
) -> list[Image.Image]:
    """`num_frames` frames spread evenly over the clip, or (with `fps`) one frame per 1/fps seconds."""
    if (num_frames is None) == (fps is None):
        raise ValueError("sample frames either by count (num_frames=) or by rate (fps=), not both")
    frames, times = read_frames(path)
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        want = np.arange(0.0, times[-1] + step / 2 + 1e-9, 1.0 / fps)
        if max_frames:
            want = want[:max_frames]
        idx = np.abs(times[None, :] - want[:, None]).argmin(1)
    else:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        idx = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    return [frames[int(i)] for i in idx]


def write_video(path: str | Path, frames: list, fps: float = 8, codec: str = "libx264") -> Path:
    """Frames (PIL or uint8 [H, W, 3]) to a video file; H.264 needs even sides, so odd ones are padded by a pixel."""
    import av

    path = Path(path)
    arrays = [np.asarray(f.convert("RGB") if isinstance(f, Image.Image) else f, dtype=np.uint8) for f in frames]
    if not arrays:
        raise VideoError("write_video needs at least one frame")
    h, w = arrays[0].shape[:2]
    eh, ew = h + h % 2, w + w % 2
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = ew, eh, "yuv420p"
        if codec in ("libx264", "h264"):
            stream.options = {"crf": "12", "preset": "veryfast"}
        for a in arrays:
            if a.shape[:2] != (eh, ew):
                a = np.pad(a, ((0, eh - a.shape[0]), (0, ew - a.shape[1]), (0, 0)), mode="edge")
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush
            container.mux(packet)
    return path
