"""`frames`: a video tower made of a vision tower run on each frame, plus where each frame sits in time.

A video in an item is a list of PIL frames in time order (data/video_io.py samples them from a file). Every frame goes
through a vision tower — the model's own image tower (shared: its features are cached per frame like any image's) or
a tower of the video's own (`vision: {...}`) — giving [T, N, D]. Then, per frame: optionally its N tokens averaged
into one (`pool: mean`; `none` keeps all N), a LayerNorm (`norm`), and a learned temporal position embedding for
its index t (`time_init: sincos` starts the table from 1-D sine-cosine places, so order is readable before it has
learned anything; `zeros` starts it at nothing). With `deltas: true` each token also carries how its place changed
since the previous frame (its normalised features minus the previous frame's, zero for the first frame: the RGB-
difference stream of two-stream and TSN video models, computed on features), so tokens are 2D wide: a connector then
reads motion, appearance and colour change at a cell without having to compare tokens T frames apart itself. The
result is [T * N', D or 2D] tokens with a mask (frames missing from a shorter video are not real). A Perceiver
Resampler connector (`perceiver`, `max_frames` >= num_frames) reads them as [B, T, N', D] frames and adds its own
time embeddings (Flamingo); any other connector reads the flat sequence.
A video with more than `num_frames` frames is subsampled uniformly to `num_frames`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..registry import ConfigError
from .base import EncoderOutput, masked_mean

POOLS = ("none", "mean")
TIME_INITS = ("sincos", "zeros")


def sincos_1d(n: int, dim: int) -> torch.Tensor:
    """[n, dim] fixed sine-cosine positions of n steps (Transformer style), half the channels sines."""
    half = dim // 2
    omega = 1.0 / 10000 ** (torch.arange(half, dtype=torch.float64) / max(half, 1))
    angle = torch.arange(n, dtype=torch.float64)[:, None] * omega[None]
    table = torch.zeros(n, dim, dtype=torch.float64)
    table[:, :half], table[:, half : 2 * half] = angle.sin(), angle.cos()
    return table.float()


def uniform_indices(total: int, k: int) -> list[int]:
    """k frame indices spread evenly over 0..total-1 (first and last included; repeats when k > total)."""
    if total < 1 or k < 1:
        raise ValueError(f"cannot pick {k} frames out of {total}")
    return [int(i) for i in np.linspace(0, total - 1, k).round()]


class VideoTower(nn.Module):
    """Per-frame tower features [B, T, N, D] (+ frame mask [B, T]) -> tokens [B, T * N', D] with time embeddings."""

    def __init__(
        self,
        hidden_size: int,
        num_frames: int = 8,
        pool: str = "none",
        time_init: str = "sincos",
        norm: bool = True,
        frames: nn.Module | None = None,
        deltas: bool = False,
    ):
        super().__init__()
        if num_frames < 1:
            raise ConfigError(f"video num_frames must be >= 1, got {num_frames}")
        if pool not in POOLS:
            raise ConfigError(f"video pool must be one of {', '.join(POOLS)}, got {pool!r}")
        if time_init not in TIME_INITS:
            raise ConfigError(f"video time_init must be one of {', '.join(TIME_INITS)}, got {time_init!r}")
        self.in_dim, self.num_frames, self.pool, self.deltas = int(hidden_size), int(num_frames), pool, bool(deltas)
        self.hidden_size = self.in_dim * (2 if self.deltas else 1)  # what the connector reads
        self.frames = frames  # the video's own frame tower, or None: the model's image tower reads the frames
        self.norm = nn.LayerNorm(self.in_dim) if norm else None
        start = sincos_1d(num_frames, self.in_dim) if time_init == "sincos" else torch.zeros(num_frames, self.in_dim)
        self.time = nn.Parameter(start)  # [T, D]

    def sample(self, frames: list) -> list:
        """A video's frames, subsampled uniformly to num_frames when it has more."""
        if not len(frames):
            raise ValueError("a video needs at least one frame")
        if len(frames) <= self.num_frames:
            return list(frames)
        return [frames[i] for i in uniform_indices(len(frames), self.num_frames)]

    def tokens_per_frame(self, n: int) -> int:
        return 1 if self.pool == "mean" else n

    def forward(self, frame_tokens: torch.Tensor, frame_mask: torch.Tensor) -> EncoderOutput:
        b, t, _, _ = frame_tokens.shape
        if t > self.num_frames:
            raise ValueError(f"the video tower was built for {self.num_frames} frames, got {t}")
        x = frame_tokens.mean(dim=2, keepdim=True) if self.pool == "mean" else frame_tokens  # [B, T, N', D]
        if self.norm is not None:
            x = self.norm(x)
        change = None
        if self.deltas:
            # a missing frame must not look like everything vanished: its change is zero, as is the first frame's
            real = frame_mask.to(x.dtype)[:, :, None, None]
            step = (x[:, 1:] - x[:, :-1]) * real[:, 1:] * real[:, :-1]
            change = torch.cat([torch.zeros_like(x[:, :1]), step], dim=1)
        x = x + self.time[:t, None, :]  # [B, T, N', D]
        if change is not None:
            x = torch.cat([x, change], dim=-1)  # [B, T, N', 2D]
        per, d = x.shape[2], x.shape[3]
        mask = frame_mask.long()[:, :, None].expand(b, t, per).reshape(b, t * per)  # [B, T*N']
        tokens = x.reshape(b, t * per, d)
        return EncoderOutput(tokens=tokens, pooled=masked_mean(tokens, mask), mask=mask)


def build_video_frames(
    *,
    in_dim: int | None = None,
    vision: dict | None = None,
    num_frames: int = 8,
    pool: str = "none",
    time_init: str = "sincos",
    norm: bool = True,
    deltas: bool = False,
) -> VideoTower:
    """Frames through a vision tower (the model's image tower, or `vision: {...}` of its own), pooled per frame or
    not, with learned temporal position embeddings; `deltas` adds each token's change since the previous frame."""
    frames = None
    if vision is not None:
        from ..registry import build
        from . import VISION_ENCODERS

        spec = dict(vision)
        if "name" not in spec:
            raise ConfigError(f"video vision spec {vision!r} needs a `name` (a vision tower)")
        frames = build(VISION_ENCODERS, "vision encoder", spec.pop("name"), **spec)
        in_dim = frames.hidden_size
    if in_dim is None:
        raise ConfigError(
            "a `frames` video tower without its own `vision:` reads frames with the model's image tower: "
            "give the model a `vision:` part, or the video part a `vision:` of its own"
        )
    return VideoTower(in_dim, num_frames, pool, time_init, norm, frames, deltas)
