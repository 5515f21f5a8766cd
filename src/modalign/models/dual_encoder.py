"""`DualEncoder`: a vision (or audio) tower and a text tower projected into one L2-normalised space (CLIP, SigLIP,
LiT; CLAP with `audio=`).

Towers come from `encoders.VISION_ENCODERS` / `AUDIO_ENCODERS` / `TEXT_ENCODERS` by name; the head (projections +
logit scale and bias) from `heads.py`; the loss from `modalign.losses` (`loss: clip | siglip`, distributed-aware).
An audio-text model is the same path with clips in place of images: items `{"audio", "text"}`, `embed_audio`, the
head's `image_proj` projecting the audio tower's pooled vector, components `audio`, `text`, `head`.

LiT and other locked-tower runs: a tower whose parameters are all frozen is a fixed function, so with
`enable_feature_cache(cache)` its outputs are looked up per sample (images by sample id, texts by
`"text:" + text`) instead of recomputed — after the first epoch only the trainable side runs. `collate` then
also skips image preprocessing for ids already cached. Frozen towers are kept in eval mode by `train()`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from ..config import ModelConfig, format_validation_error
from ..data.audio_io import as_waveform
from ..encoders.base import EncoderOutput
from ..encoders.cache import audio_key, cached_forward, image_key
from ..losses import clip_loss, siglip_loss
from ..registry import ConfigError
from .base import AlignmentModel
from .heads import ContrastiveHead
from .parts import resolve
from .saving import save_model, snapshot_versions


def _frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


@contextlib.contextmanager
def _inference(module: nn.Module):
    """Eval mode and no grad; restores every submodule's own mode after (frozen towers stay in eval)."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in modes.items():
            m.training = mode


_UNSET = object()


class DualEncoder(AlignmentModel):
    """A vision tower and a text tower projected into one L2-normalised space, trained with CLIP's or SigLIP's loss.

    Each tower is a registered name (`"efficientnet-lite0"`, `"minilm"`, `"vit"`), a spec `{"name": ..., **params}`,
    a local Hugging Face checkpoint directory, or your own `nn.Module` (models/parts.py). `audio` (e.g.
    `"whisper-tiny"`) takes the vision tower's place: audio-text contrastive learning (CLAP). `embed_dim`: the shared
    space; `head`: linear or mlp projections; `loss`: clip or siglip; `positives`: "pair" (each image's own caption)
    or "label" (items of one class label are positives of each other, UniCL).
    """

    def __init__(
        self,
        vision=_UNSET,
        text="minilm",
        *,
        audio=None,
        embed_dim: int = 256,
        head: str = "linear",
        loss: str = "clip",
        siglip_chunk_size: int | None = None,
        positives: str = "pair",
    ):
        super().__init__()
        from ..encoders import AUDIO_ENCODERS, TEXT_ENCODERS, VISION_ENCODERS

        if audio is not None and vision not in (_UNSET, None):
            raise ConfigError("a DualEncoder pairs text with one tower: give vision= or audio=, not both")
        vspec = aspec = None
        if audio is not None:
            aspec, media_m = resolve(audio, "audio encoder", AUDIO_ENCODERS)
        else:
            vspec, media_m = resolve(
                "efficientnet-lite0" if vision is _UNSET else vision, "vision encoder", VISION_ENCODERS
            )
        tspec, text_m = resolve(text, "text encoder", TEXT_ENCODERS)
        try:
            cfg = ModelConfig(
                kind="dual",
                vision=vspec,
                audio=aspec,
                text=tspec,
                embed_dim=embed_dim,
                head=head,
                loss=loss,
                siglip_chunk_size=siglip_chunk_size,
                positives=positives,
            )
        except ValidationError as err:
            raise ConfigError(format_validation_error(err, "DualEncoder")) from None
        self._setup(cfg, media_m, text_m)

    def _setup(self, cfg: ModelConfig, media: nn.Module, text: nn.Module) -> None:
        self.cfg = cfg
        self.modality = "audio" if cfg.audio is not None else "vision"
        setattr(self, self.modality, media)  # self.vision or self.audio: the state-dict prefix names the tower
        self.text = text
        self.head = ContrastiveHead(media.hidden_size, text.hidden_size, cfg.embed_dim, cfg.head, cfg.loss)
        self._feature_cache = None
        # pretrained towers as built: a save names them instead of storing them while they stay unchanged
        self._pristine = {self.modality: snapshot_versions(media), "text": snapshot_versions(text)}

    @property
    def media_tower(self) -> nn.Module:
        """The tower across from the text one: `vision`, or `audio` for an audio-text model."""
        return getattr(self, self.modality)

    # -- building, saving, loading ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DualEncoder:
        if cfg.kind != "dual" or cfg.text is None:
            raise ConfigError("DualEncoder needs `kind: dual` with `vision:` and `text:` towers")
        options = cfg.model_dump(include={"embed_dim", "head", "loss", "siglip_chunk_size", "positives"})
        return cls(cfg.vision, cfg.text, audio=cfg.audio, **options)

    @classmethod
    def rebuild(cls, meta: dict, directory: Path) -> DualEncoder:
        del directory
        return cls.from_config(ModelConfig.model_validate(meta["model"]))

    @classmethod
    def load(cls, directory: str | Path, trust_code: bool = False) -> DualEncoder:
        from . import load_model

        model = load_model(directory, trust_code=trust_code)
        if not isinstance(model, cls):
            raise ConfigError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save_pretrained(self, directory: str | Path, full: bool = False) -> Path:
        """Save into `directory` (models/saving.py): trained parts stored, unchanged pretrained towers named.
        `full=True` stores every weight."""
        return save_model(self, directory, full=full)

    def save_extras(self) -> dict:
        return {}

    def save_files(self, directory: Path) -> None:
        del directory  # towers keep their tokenizers in their own packages / checkpoint directories

    def pretrained_sources(self) -> dict:
        return {
            self.modality: getattr(self.media_tower, "pretrained_source", None),
            "text": getattr(self.text, "pretrained_source", None),
        }

    # -- the AlignmentModel contract ----------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        return {self.modality: self.media_tower, "text": self.text, "head": self.head}

    def lock(self, component: str) -> None:
        """Freeze one component (LiT locks `vision`): no gradient, eval mode, eligible for the feature cache."""
        parts = self.components()
        if component not in parts:
            raise ConfigError(f"cannot lock {component!r}; a DualEncoder's components are {sorted(parts)}")
        parts[component].requires_grad_(False)
        parts[component].eval()

    def train(self, mode: bool = True) -> DualEncoder:
        super().train(mode)
        for tower in (self.media_tower, self.text):  # a frozen tower is a fixed function: no dropout, no BN drift
            if _frozen(tower):
                tower.eval()
        return self

    def enable_feature_cache(self, cache) -> None:
        self._feature_cache = cache

    def _cache_for(self, tower: nn.Module):
        return self._feature_cache if self._feature_cache is not None and _frozen(tower) else None

    def collate(self, samples: list[dict]) -> dict:
        if not samples:
            raise ValueError("collate got no samples")
        if self.modality == "audio":
            return self._collate_audio(samples)
        missing = [s.get("id", i) for i, s in enumerate(samples) if "image" not in s or "text" not in s]
        if missing:
            raise ValueError(f"contrastive samples need `image` and `text`; missing in sample(s) {missing[:5]}")
        # Frozen-tower features are keyed by image content, so evaluation (embed_images) reuses training's entries.
        ids = [image_key(s["image"]) for s in samples]
        texts = [s["text"] for s in samples]
        batch = self._text_batch(texts)
        cache = self._cache_for(self.vision)
        all_cached = cache is not None and all(cache.get(k) is not None for k in ids)
        # Cached images need no decoding/resizing: for a locked vision tower that is most of the input cost.
        batch["pixel_values"] = None if all_cached else self.vision.preprocess([s["image"] for s in samples])
        batch["ids"] = ids
        batch["texts"] = texts
        if all(s.get("label") is not None for s in samples):
            batch["labels"] = torch.tensor([int(s["label"]) for s in samples])
        return batch

    def _collate_audio(self, samples: list[dict]) -> dict:
        missing = [s.get("id", i) for i, s in enumerate(samples) if "audio" not in s or "text" not in s]
        if missing:
            raise ValueError(f"audio-text samples need `audio` and `text`; missing in sample(s) {missing[:5]}")
        clips = [as_waveform(s["audio"]) for s in samples]
        texts = [s["text"] for s in samples]
        batch = self._text_batch(texts)
        keys = [audio_key(c) for c in clips]
        cache = self._cache_for(self.audio)
        all_cached = cache is not None and all(cache.get(k + "#pooled") is not None for k in keys)
        batch["audio_inputs"] = None if all_cached else self.audio.preprocess(clips)  # log-mel only on a miss
        batch["ids"] = keys
        batch["texts"] = texts
        if all(s.get("label") is not None for s in samples):
            batch["labels"] = torch.tensor([int(s["label"]) for s in samples])
        return batch

    def _text_batch(self, texts: list[str]) -> dict:
        """The text side of a contrastive batch: token ids, or none when a locked text tower has every text cached."""
        text_cache = self._cache_for(self.text)
        if text_cache is not None and all(text_cache.get("text:" + t) is not None for t in texts):
            return {"input_ids": None, "attention_mask": None}
        return dict(self.text.tokenize(texts))

    def training_loss(self, batch: dict, objective: str = "contrastive") -> dict:
        if objective != "contrastive":
            raise ConfigError(f"a DualEncoder trains with objective `contrastive`, not {objective!r}")
        if self.modality == "audio":
            img = self.encode_audio(batch["audio_inputs"], batch.get("ids"))  # [B, E]
        else:
            img = self.encode_image(batch["pixel_values"], batch.get("ids"))  # [B, E]
        txt = self.encode_text(batch["input_ids"], batch["attention_mask"], batch.get("texts"))  # [B, E]
        scale = self.logit_scale
        if self.cfg.loss == "clip":
            # local_loss: same gradients as the full [W*b, W*b] logits under torchrun, memory linear in W*b
            labels = None
            if self.cfg.positives == "label":
                if "labels" not in batch:
                    raise ConfigError(
                        "positives: label needs items with an integer 'label' (e.g. fashion-mnist); "
                        "use positives: pair for caption data without labels"
                    )
                labels = torch.as_tensor(batch["labels"])
            loss = clip_loss(img, txt, scale, local_loss=True, gather_with_grad=True, labels=labels)
            return {"loss": loss, "logit_scale": scale.detach()}
        loss = siglip_loss(img, txt, scale, self.logit_bias, chunk_size=self.cfg.siglip_chunk_size)
        return {"loss": loss, "logit_scale": scale.detach(), "logit_bias": self.logit_bias.detach()}

    # -- embeddings ---------------------------------------------------------------------------------------------
    @property
    def logit_scale(self) -> torch.Tensor:
        return self.head.logit_scale()

    @property
    def logit_bias(self) -> torch.Tensor | None:
        return self.head.logit_bias

    def image_features(self, pixel_values: torch.Tensor | None, ids: list[str] | None = None) -> EncoderOutput:
        """Vision tower output; a frozen tower's comes from the feature cache by sample id."""
        cache = self._cache_for(self.vision)
        if pixel_values is None and (cache is None or ids is None or any(cache.get(k) is None for k in ids)):
            raise ValueError(
                "pixel_values is None but the images are not all in the feature cache; "
                "collate the batch again (the cache or the freeze plan changed since)"
            )
        return cached_forward(cache, ids, lambda: self.vision(pixel_values))

    def text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, texts: list[str] | None = None
    ) -> EncoderOutput:
        keys = ["text:" + t for t in texts] if texts is not None else None
        cache = self._cache_for(self.text)
        if input_ids is None and (cache is None or keys is None or any(cache.get(k) is None for k in keys)):
            raise ValueError(
                "input_ids is None but the texts are not all in the feature cache; "
                "collate the batch again (the cache or the freeze plan changed since)"
            )
        return cached_forward(cache, keys, lambda: self.text(input_ids, attention_mask))

    def audio_features(self, inputs: dict | None, keys: list[str] | None = None) -> EncoderOutput:
        """Audio tower output; a frozen tower's comes from the feature cache by the clips' samples."""
        cache = self._cache_for(self.audio)
        if inputs is None and (cache is None or keys is None or any(cache.get(k + "#pooled") is None for k in keys)):
            raise ValueError("audio inputs are None but the clips are not all in the feature cache; collate again")
        return cached_forward(cache, keys, lambda: self.audio(**inputs), pooled_only=True)  # the head reads pooled

    def encode_audio(self, inputs: dict | None, keys: list[str] | None = None) -> torch.Tensor:
        pooled = self.audio_features(inputs, keys).pooled  # [B, Da]
        return F.normalize(self.head.image_proj(pooled), dim=-1)  # [B, E]

    def embed_audio(self, clips: list, batch_size: int = 32) -> torch.Tensor:
        """Waveforms (float32 at 16 kHz) or audio file paths -> [N, E] L2-normalised embeddings (eval mode, no grad)."""
        if self.modality != "audio":
            raise ConfigError("this DualEncoder has a vision tower: use embed_images (build it with audio= for clips)")
        out = []
        with _inference(self):
            for a in range(0, len(clips), batch_size):
                chunk = [as_waveform(c) for c in clips[a : a + batch_size]]
                cache = self._cache_for(self.audio)
                keys = [audio_key(c) for c in chunk] if cache is not None else None
                cached = cache is not None and all(cache.get(k + "#pooled") is not None for k in keys)
                out.append(self.encode_audio(None if cached else self.audio.preprocess(chunk), keys))
        return torch.cat(out) if out else torch.zeros(0, self.cfg.embed_dim)

    def encode_image(self, pixel_values: torch.Tensor | None, ids: list[str] | None = None) -> torch.Tensor:
        pooled = self.image_features(pixel_values, ids).pooled  # [B, Dv]
        return F.normalize(self.head.image_proj(pooled), dim=-1)  # [B, E]

    def encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, texts: list[str] | None = None
    ) -> torch.Tensor:
        pooled = self.text_features(input_ids, attention_mask, texts).pooled  # [B, Dt]
        return F.normalize(self.head.text_proj(pooled), dim=-1)  # [B, E]

    def _pooled_image_features(self, chunk: list) -> torch.Tensor:
        """Pooled tower features of PIL images; a frozen tower with a cache computes each picture only once."""
        cache = self._cache_for(self.vision)
        keys = [image_key(im) for im in chunk] if cache is not None else None
        cached = cache is not None and all(cache.get(k) is not None for k in keys)
        return self.image_features(None if cached else self.vision.preprocess(chunk), keys).pooled  # [B, Dv]

    def embed_images(self, images: list, batch_size: int = 64) -> torch.Tensor:
        """PIL images -> [N, E] L2-normalised embeddings (eval mode, no grad, `batch_size` images at a time)."""
        out = []
        with _inference(self):
            for a in range(0, len(images), batch_size):
                pooled = self._pooled_image_features(list(images[a : a + batch_size]))
                out.append(F.normalize(self.head.image_proj(pooled), dim=-1))
        return torch.cat(out) if out else torch.zeros(0, self.cfg.embed_dim)

    def embed_image_features(self, images: list, batch_size: int = 64) -> torch.Tensor:
        """PIL images -> [N, Dv] pooled tower features before the head (what a linear probe of the tower reads)."""
        out = []
        with _inference(self):
            for a in range(0, len(images), batch_size):
                out.append(self._pooled_image_features(list(images[a : a + batch_size])))
        return torch.cat(out) if out else torch.zeros(0, self.vision.hidden_size)

    def embed_texts(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """Strings -> [N, E] L2-normalised embeddings (eval mode, no grad, `batch_size` texts at a time)."""
        if isinstance(texts, str):
            raise TypeError("embed_texts expects a list of strings; wrap a single text as [text]")
        out = []
        with _inference(self):
            for a in range(0, len(texts), batch_size):
                chunk = list(texts[a : a + batch_size])
                tok = self.text.tokenize(chunk)
                out.append(self.encode_text(tok["input_ids"], tok["attention_mask"], chunk))
        return torch.cat(out) if out else torch.zeros(0, self.cfg.embed_dim)
