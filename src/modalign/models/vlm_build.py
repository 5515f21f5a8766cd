"""Building a VisionLanguageModel's parts: connectors sized to their towers, and the audio / video parts.

Shared by the constructor (parts given as names, specs, directories or modules) and by `around_lm` (parts from a
saved config), so that a model and its rebuild draw the same modules in the same order: vision + connector, then
audio + its connector, then video + its connector; a part the model does not have draws nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import Component, ModelConfig
from ..encoders import AUDIO_ENCODERS, VIDEO_ENCODERS
from ..registry import ConfigError, build
from .lm import add_placeholder_tokens
from .parts import as_spec, module_spec, resolve
from .vlm_media import MODALITIES, PLACEHOLDERS


def _connectors():
    from ..connectors import CONNECTORS

    return CONNECTORS


def probe_vision_tokens(vision: nn.Module) -> int:
    """Tokens the tower gives per image, from one blank image at its input size."""
    size = vision.image_size
    h, w = (size, size) if isinstance(size, int) else size
    was_training = vision.training
    vision.eval()  # a probe must not touch batch-norm statistics (nor fail on a 1x1 map in train mode)
    try:
        with torch.no_grad():
            return int(vision(torch.zeros(1, 3, h, w)).tokens.shape[1])
    finally:
        vision.train(was_training)


def build_connector(part, in_dim: int, out_dim: int, probe=None) -> tuple[Component, nn.Module, int | None]:
    """(spec, connector, tokens it was sized for) from a name, spec or module; `positions: true` asks `probe()` for
    the tower's token count."""
    if isinstance(part, nn.Module):
        return module_spec(part, "connector"), part, None
    spec = as_spec(part, "connector", _connectors())
    params, tokens = spec.params(), None
    if isinstance(params.get("positions"), int) and not isinstance(params.get("positions"), bool):
        tokens = params["positions"]
    if params.get("positions") is True:  # `positions: true` = one learned position per tower token
        if probe is None:
            raise ConfigError("positions: true needs a fixed token count; give positions: N (the tower's tokens)")
        params["positions"] = tokens = probe()
    return spec, build(_connectors(), "connector", spec.name, in_dim=in_dim, out_dim=out_dim, **params), tokens


def build_media(audio, audio_connector, video, video_connector, vision: nn.Module | None, width: int):
    """({config field: spec}, {modality: (tower, connector)}) of the audio and video parts that are given."""
    specs, media = {}, {}
    if audio is not None:
        aspec, tower = resolve(audio, "audio encoder", AUDIO_ENCODERS)
        cspec, connector, _ = build_connector(audio_connector, tower.hidden_size, width)
        specs.update(audio=aspec, audio_connector=cspec)
        media["audio"] = (tower, connector)
    if video is not None:
        frames_dim = vision.hidden_size if vision is not None else None
        vspec, tower = resolve(video, "video encoder", VIDEO_ENCODERS, in_dim=frames_dim)
        own = getattr(tower, "frames", None)
        frame_tower = own if own is not None else vision

        def probe():  # `positions: true` for a video: every frame's tokens, num_frames of them
            if frame_tower is None:
                raise ConfigError("the video tower has no frame tower to count tokens with")
            return tower.num_frames * tower.tokens_per_frame(probe_vision_tokens(frame_tower))

        cspec, connector, _ = build_connector(video_connector, tower.hidden_size, width, probe)
        specs.update(video=vspec, video_connector=cspec)
        media["video"] = (tower, connector)
    return specs, media


def media_tokens_of(cfg: ModelConfig) -> tuple[str, ...]:
    """The placeholder tokens (`<audio>`, `<video>`) of the parts in `cfg`."""
    return tuple(PLACEHOLDERS[m] for m in MODALITIES if getattr(cfg, m) is not None)


def add_media_tokens(lm: nn.Module, tokenizer, cfg: ModelConfig) -> None:
    """The `<audio>` / `<video>` placeholders of the parts in `cfg`, added in one call (so that a rebuilt LM gets
    bit-identical new rows); nothing for an image-only model."""
    tokens = media_tokens_of(cfg)
    if tokens:
        add_placeholder_tokens(lm, tokenizer, tokens)
