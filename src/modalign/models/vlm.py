"""VisionLanguageModel: any vision tower + connector + causal LM, trained on captions or LLaVA conversations; audio
and video parts beside it, each with its own tower and connector, into the same LM (one token stream).

Layout (nanoVLM style): `vision` (a VisionEncoder), `connector` (from `CONNECTORS`), `lm` (a transformers causal LM)
and its `tokenizer`; optionally `audio` + `audio_connector` and `video` + `video_connector` (vlm_media.py), and a
model may have no vision tower at all (`vision=None`: a speech or sound LM). Two fusions:
- prefix (`linear`, `mlp`, `pixel-shuffle`, `qformer`, `perceiver`): each `<image>` in the text is expanded to M
  placeholder tokens; their embeddings are overwritten with the connector's output by masking on the image token id
  (see transformers' LlavaModel.get_placeholder_mask / nanoVLM `_replace_img_tokens_with_embd`).
- cross-attention (`xattn`): the connector's gated blocks are installed in the LM's decoder layers, `<image>` stays
  one marker token, and the images' features are handed to the blocks (`set_media`) for each forward.
Inference (generate / score / answer_many) lives in vlm_inference.py, text building in vlm_prompts.py, LoRA in
vlm_lora.py. With a `qformer` connector the model also holds BLIP-2's stage-1 text side and heads
(`qformer_stage1`, blip2_stage1.py; part of the `connector` component) for the `qformer` objective.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import Component, LoraConfig, ModelConfig
from ..encoders import VISION_ENCODERS
from ..encoders.cache import cached_forward, image_key
from ..losses import lm_loss
from ..registry import ConfigError, build
from .base import AlignmentModel
from .blip2_stage1 import build_stage1, stage1_loss
from .lm import build_lm, from_saved, save_lm_files, saved_tokenizer
from .parts import as_spec, resolve, resolve_lm
from .saving import save_model, snapshot_versions
from .vlm_build import add_media_tokens, build_connector, build_media, media_tokens_of, probe_vision_tokens
from .vlm_inference import InferenceMixin
from .vlm_lora import LoraMixin, ParameterView
from .vlm_media import MODALITIES, PLACEHOLDERS, MediaMixin, item_media
from .vlm_prompts import IGNORE_INDEX, PromptBuilder

# transformers causal LMs whose logits are exactly lm_head(final hidden state): no scaling or soft-capping after it
_PLAIN_HEAD_LMS = {"llama", "mistral", "qwen2", "qwen3"}


def _sample_images(sample: dict) -> list:
    """A sample's images in text order: `images` (several) or `image` (one) or none."""
    if "images" in sample:
        return list(sample["images"])
    return [sample["image"]] if sample.get("image") is not None else []


class VisionLanguageModel(InferenceMixin, MediaMixin, LoraMixin, AlignmentModel):
    # saves made before BLIP-2's stage-1 heads existed lack them; they load with fresh heads
    optional_state_prefixes = ("qformer_stage1.",)

    """A vision tower, a connector and a causal LM, built from parts.

    Each part is a registered name (`"efficientnet-lite0"`, `"mlp"`, `"smollm2-135m"`), a spec
    `{"name": ..., **params}`, a local Hugging Face checkpoint directory, or your own `nn.Module` (see
    models/parts.py); `tokenizer` goes with an LM given as a transformers model object, `text_corpus` with a
    from-scratch LM that trains its tokenizer (`tiny-llama`). `anyres` turns on LLaVA-1.6 tiling (AnyRes).
    `audio` (`"whisper-tiny"`, `"conv"`, ...) with `audio_connector`, and `video` (`{"name": "frames", ...}`) with
    `video_connector`, add those modalities; `vision=None` builds a model without an image tower.
    """

    def __init__(
        self,
        vision="efficientnet-lite0",
        connector="mlp",
        lm="smollm2-135m",
        *,
        tokenizer=None,
        text_corpus=None,
        anyres: dict | None = None,
        system_prompt: str | None = None,
        audio=None,
        audio_connector="mlp",
        video=None,
        video_connector="mlp",
    ):
        super().__init__()
        lspec, lm_m, tok = resolve_lm(lm, tokenizer, text_corpus)
        width = lm_m.config.hidden_size
        # LM first, then the tower and the connector: the order random initialisations have always been drawn in
        vspec = cspec = vision_m = connector_m = tokens = None
        if vision is not None:
            spec = as_spec(vision, "vision encoder", VISION_ENCODERS)
            if spec is not None and "anyres" in spec.params():  # ours, not the tower's: tiling happens around it
                vparams = spec.params()
                anyres = vparams.pop("anyres") if anyres is None else anyres
                vision = Component(name=spec.name, **vparams)
            vspec, vision_m = resolve(vision, "vision encoder", VISION_ENCODERS)
            cspec, connector_m, tokens = build_connector(
                connector, vision_m.hidden_size, width, lambda: probe_vision_tokens(vision_m)
            )
            if anyres is not None:
                vspec = Component(name=vspec.name, **vspec.params(), anyres=dict(anyres))
        elif anyres is not None:
            raise ConfigError("anyres tiles images: it needs a vision tower")
        # then audio, then video: parts a model does not have draw nothing
        specs, media = build_media(audio, audio_connector, video, video_connector, vision_m, width)
        cfg = ModelConfig(kind="vlm", vision=vspec, connector=cspec, lm=lspec, system_prompt=system_prompt, **specs)
        self._setup(cfg, vision_m, connector_m, lm_m, tok, anyres, tokens, media)

    @classmethod
    def from_modules(
        cls, cfg: ModelConfig, vision, connector, lm, tokenizer, anyres=None, num_vision_tokens=None, media=None
    ):
        """Assemble already built modules under a given config (what loading and exporting use); `media`:
        {"audio": (tower, connector), "video": (tower, connector)}."""
        model = cls.__new__(cls)
        AlignmentModel.__init__(model)
        model._setup(cfg, vision, connector, lm, tokenizer, anyres, num_vision_tokens, media)
        return model

    def _setup(self, cfg, vision, connector, lm, tokenizer, anyres, num_vision_tokens, media=None) -> None:
        self.cfg = cfg
        self.vision = vision
        self.connector = connector
        self.lm = lm
        self.tokenizer = tokenizer
        media = media or {}
        add_media_tokens(self.base_lm(), tokenizer, cfg)  # <audio> / <video>, only for the parts this model has
        for m in MODALITIES:
            tower, conn = media.get(m, (None, None))
            setattr(self, m, tower)
            setattr(self, f"{m}_connector", conn)
        self.fusion = getattr(connector, "fusion", "prefix")
        for name, conn in [("connector", connector)] + [(f"{m}_connector", media[m][1]) for m in media]:
            fusion = getattr(conn, "fusion", "prefix")
            if conn is not None and fusion not in ("prefix", "xattn"):
                raise ConfigError(f"{name} {type(conn).__name__} has fusion={fusion!r}; expected prefix or xattn")
            if conn is not None and fusion == "xattn":
                conn.install(self.base_lm().get_decoder().layers)
        # the builder may already know it (it sized the connector's positions): one probe forward, not two
        self.num_vision_tokens = (num_vision_tokens or probe_vision_tokens(vision)) if vision is not None else 0
        per_image = 1
        if connector is not None and self.fusion == "prefix":
            per_image = connector.num_tokens(self.num_vision_tokens)
        if self.video is not None:
            if self._frame_tower() is None:
                raise ConfigError("the video tower reads frames with the image tower, but this model has no `vision:`")
            self._frame_tokens = probe_vision_tokens(self._frame_tower())
        self.prompts = PromptBuilder(
            tokenizer,
            per_image,
            self.base_lm().config.max_position_embeddings,
            cfg.system_prompt,
            media_tokens=media_tokens_of(cfg),
        )
        self.image_token_id = self.prompts.image_token_id
        max_positions = self.base_lm().config.max_position_embeddings
        self.qformer_stage1 = build_stage1(connector, tokenizer, max_positions) if connector is not None else None
        self.tiler = None
        if anyres is not None:
            self._setup_anyres(dict(anyres))
        self._feature_cache = None
        self._lora_cfg: LoraConfig | None = None
        self.aux_losses: list = []
        # pretrained parts as built: a save names them instead of storing them while they stay unchanged
        self._pristine = {"lm": snapshot_versions(self.base_lm())}
        for name in ("vision", *MODALITIES):
            if getattr(self, name) is not None:
                self._pristine[name] = snapshot_versions(getattr(self, name))

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: ModelConfig, text_corpus=None) -> VisionLanguageModel:
        if cfg.kind != "vlm":
            raise ConfigError(f"VisionLanguageModel needs model.kind: vlm, got {cfg.kind!r}")
        media = {k: getattr(cfg, k) for k in ("audio", "audio_connector", "video", "video_connector")}
        media = {k: v for k, v in media.items() if v is not None}
        return cls(cfg.vision, cfg.connector, cfg.lm, text_corpus=text_corpus, system_prompt=cfg.system_prompt, **media)

    @classmethod
    def rebuild(cls, meta: dict, directory: Path) -> VisionLanguageModel:
        """The model a save describes, before its stored tensors are loaded: referenced parts come pretrained."""
        cfg = ModelConfig.model_validate(meta["model"])
        tok = saved_tokenizer(directory)
        if "lm" in meta.get("references", {}):
            lm, _ = build_lm(cfg.lm.name, cfg.lm.params())
            add_media_tokens(lm, tok, cfg)  # the rows <audio> / <video> added when it was built, the same way
            if len(tok) > lm.get_input_embeddings().num_embeddings:
                raise ConfigError(f"{directory}: its tokenizer has more tokens than the rebuilt LM; save it again")
        else:
            lm, _ = from_saved(directory)
        model = cls.around_lm(cfg, lm, tok)
        if meta.get("lora"):
            model.enable_lora(LoraConfig.model_validate(meta["lora"]))
        return model

    @classmethod
    def around_lm(cls, cfg: ModelConfig, lm, tokenizer) -> VisionLanguageModel:
        """The config's towers and connectors, built fresh, around a given LM and tokenizer."""
        width = lm.config.hidden_size
        vision = connector = tokens = anyres = None
        if cfg.vision is not None:
            vparams = cfg.vision.params()
            anyres = vparams.pop("anyres", None)
            vision = build(VISION_ENCODERS, "vision encoder", cfg.vision.name, **vparams)
            _, connector, tokens = build_connector(
                cfg.connector, vision.hidden_size, width, lambda: probe_vision_tokens(vision)
            )
        parts = (cfg.audio, cfg.audio_connector, cfg.video, cfg.video_connector)
        _, media = build_media(*parts, vision, width)
        return cls.from_modules(cfg, vision, connector, lm, tokenizer, anyres, tokens, media)

    @classmethod
    def load(cls, directory: str | Path, trust_code: bool = False) -> VisionLanguageModel:
        from . import load_model

        model = load_model(directory, trust_code=trust_code)
        if not isinstance(model, cls):
            raise ConfigError(f"{directory} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def save_pretrained(self, directory: str | Path, full: bool = False) -> Path:
        """Save into `directory` (models/saving.py): trained parts stored, unchanged pretrained parts named.
        `full=True` stores every weight."""
        return save_model(self, directory, full=full)

    def save_extras(self) -> dict:
        return {"lora": self._lora_cfg.model_dump() if self._lora_cfg else None}

    def save_files(self, directory: Path) -> None:
        save_lm_files(self.lm, self.tokenizer, directory)

    def pretrained_sources(self) -> dict:
        sources = {"lm": getattr(self.base_lm(), "pretrained_source", None)}
        for name in ("vision", *MODALITIES):
            if getattr(self, name) is not None:
                sources[name] = getattr(getattr(self, name), "pretrained_source", None)
        return sources

    def base_lm(self) -> nn.Module:
        """The transformers CausalLM under any peft wrapper."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    # -- the AlignmentModel contract ---------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        """vision, connector, lm (without adapters or installed cross-attention blocks), lm.lora (adapters); audio,
        audio_connector, video, video_connector for the modalities the model has."""
        connectors = [c for c in [self.connector] + [self._connector_of(m) for m in self.media_modalities()] if c]
        connector_ids = {id(p) for c in connectors for p in c.parameters()}
        lora = [(n, p) for n, p in self.lm.named_parameters() if "lora_" in n]
        lora_ids = {id(p) for _, p in lora}
        if not connector_ids & {id(p) for p in self.lm.parameters()} and not lora:
            lm_part: nn.Module = self.lm
        else:  # xattn blocks and LoRA weights live inside the LM's modules: give the base weights on their own
            lm_part = ParameterView(
                (n, p) for n, p in self.lm.named_parameters() if id(p) not in connector_ids | lora_ids
            )
        parts: dict[str, nn.Module] = {}
        if self.vision is not None:
            connector: nn.Module = self.connector
            if self.qformer_stage1 is not None:  # BLIP-2 trains the Q-Former's text side with it
                connector = nn.ModuleList([self.connector, self.qformer_stage1])
            parts.update(vision=self.vision, connector=connector)
        parts["lm"] = lm_part
        if lora:
            parts["lm.lora"] = ParameterView(lora)
        for m in self.media_modalities():
            parts[m] = getattr(self, m)
            parts[f"{m}_connector"] = self._connector_of(m)
        return parts

    def set_aux_losses(self, losses: list) -> None:
        """The auxiliary losses (models/aux_losses.py) added to the caption / instruct loss from now on."""
        for aux in losses:
            aux.check(self)
        self.aux_losses = list(losses)

    def enable_feature_cache(self, cache) -> None:
        self._feature_cache = cache

    def collate(self, samples: list[dict]) -> dict:
        rows, images, keys, counts = [], [], [], []
        per_modality = {m: [item_media(s, m) for s in samples] for m in MODALITIES}
        for i, s in enumerate(samples):
            imgs = _sample_images(s)
            n_media = {PLACEHOLDERS[m]: len(per_modality[m][i]) for m in MODALITIES}
            if "conversations" in s:
                text, spans = self.prompts.instruct_example(s["conversations"], len(imgs), n_media)
            elif "text" in s:
                if not imgs and not any(n_media.values()):
                    raise ValueError(f"caption sample {s.get('id')!r} has no image, audio or video")
                markers = "".join(PLACEHOLDERS[m] * len(per_modality[m][i]) for m in ("video", "audio"))
                text, spans = self.prompts.caption_example(s["text"], len(imgs), markers)
            else:
                raise ValueError(f"sample {s.get('id')!r}: expected `text` (caption) or `conversations` (instruct)")
            rows.append((text, spans, len(imgs)))
            images += imgs
            counts.append(len(imgs))
            # frozen-tower features are keyed by image content: stages and datasets whose ids collide (same scene
            # index, other image size) can never read each other's entries
            keys += [image_key(im) for im in imgs]
        pixel_values, token_counts, layouts = self.image_inputs(images) if images else (None, [], None)
        media = {m: self.media_batch(m, per_modality[m]) for m in MODALITIES}
        media = {m: mb for m, mb in media.items() if mb is not None}
        row_media = self._row_media_counts(media, len(samples))
        encoded, start = [], 0
        for r, (text, spans, n) in enumerate(rows):
            encoded.append(self.prompts.encode(text, spans, token_counts[start : start + n], row_media[r]))
            start += n
        batch = self.prompts.pad([e[0] for e in encoded], [e[1] for e in encoded], side="right")
        batch["pixel_values"] = pixel_values
        batch["image_counts"] = counts
        batch["image_layouts"] = layouts
        if layouts is not None:  # one cache entry per tile
            keys = [f"{k}@{t}" for k, (_, _, n_tiles) in zip(keys, layouts) for t in range(n_tiles)]
        batch["image_keys"] = keys
        batch.update(media)  # "audio", "video": what each part's tower and connector need (vlm_media.py)
        batch["ids"] = [s.get("id") for s in samples]
        for aux in self.aux_losses:
            aux.collate(self, samples, batch)
        return batch

    def training_loss(self, batch: dict, objective: str) -> dict:
        if objective == "qformer":
            return stage1_loss(self, batch)
        if objective not in ("caption", "instruct"):
            raise ConfigError(
                f"VisionLanguageModel trains with objective caption, instruct or qformer, not {objective!r}"
            )
        img = None
        media = {m: batch[m] for m in MODALITIES if batch.get(m) is not None}
        labels = batch["labels"]
        try:
            if (
                self.aux_losses
                and batch.get("pixel_values") is not None
                and self.fusion == "prefix"
                and self.tiler is None
            ):
                # the connector's tokens feed the LM and the auxiliary losses: computed once
                img = self.image_embeddings(batch["pixel_values"], batch.get("image_keys"))
                embeds = self.merge_embeddings(batch["input_ids"], img, self._prefix_media(media))
            else:
                embeds = self.prepare_inputs(
                    batch["input_ids"],
                    batch.get("pixel_values"),
                    batch.get("image_counts"),
                    batch.get("image_keys"),
                    batch.get("image_layouts"),
                    media=media,
                )
            # next-token prediction; only answer/caption tokens carry labels
            loss = self._answer_loss(embeds, batch["attention_mask"], labels)
        finally:
            self.clear_all_media()
        tokens = (labels[:, 1:] != IGNORE_INDEX).sum().float()
        # loss_weight: the trainer weighs micro-batches by answer tokens, so accumulation and DDP give the exact
        # token-mean gradient of the whole global batch
        out = {"loss": loss, "answer_tokens": tokens, "loss_weight": tokens}
        if self.aux_losses:
            out["lm_loss"] = loss.detach()
            for aux in self.aux_losses:
                value = aux(self, batch, img)
                out[f"{aux.name}_loss"] = value.detach()
                out["loss"] = out["loss"] + aux.weight * value
        return out

    # -- vision -> LM ------------------------------------------------------------------------------------------
    def encode_images(self, pixel_values: torch.Tensor, keys: list[str] | None = None) -> torch.Tensor:
        """Vision tower tokens [n_img, N, Dv]; a frozen tower's features come from the feature cache by sample id."""
        frozen = not any(p.requires_grad for p in self.vision.parameters())
        cache = self._feature_cache if frozen else None
        return cached_forward(cache, keys, lambda: self.vision(pixel_values)).tokens

    def image_embeddings(self, pixel_values: torch.Tensor, keys: list[str] | None = None, layouts=None):
        """Prefix fusion: connector output [n_img, M, D_lm] for the images in text order (AnyRes: [sum M_i, D_lm],
        each image's tiles joined by `merge_tile_features`)."""
        feats = self.connector(self.encode_images(pixel_values, keys))  # [n_tiles, m, D]
        return feats if layouts is None else self._merge_tiles(feats, layouts)

    def merge_embeddings(
        self, input_ids: torch.Tensor, image_embeds: torch.Tensor | None, media_embeds: dict | None = None
    ) -> torch.Tensor:
        """Token embeddings [B, T, D] with the `<image>` placeholders overwritten row-major by `image_embeds`, and
        each other modality's placeholders by its embeddings (`media_embeds` {modality: [n, D]})."""
        embeds = self.lm.get_input_embeddings()(input_ids)  # [B, T, D]
        ids = self.placeholder_ids() if self.media_modalities() else {}
        filled = [("image", self.image_token_id, image_embeds)]
        filled += [(m, ids[m], (media_embeds or {}).get(m)) for m in ids if self.media_fusion(m) == "prefix"]
        for kind, token_id, values in filled:
            mask = input_ids == token_id  # [B, T]
            n_slots = int(mask.sum())
            n_feats = 0 if values is None else values.numel() // embeds.shape[-1]
            if n_slots != n_feats:
                raise ValueError(
                    f"{n_slots} {kind} placeholder tokens but {n_feats} {kind} embeddings: each {kind} needs "
                    f"one <{kind}> marker in its text"
                )
            if values is not None:
                flat = values.to(embeds.dtype).reshape(-1, embeds.shape[-1])
                embeds = embeds.masked_scatter(mask.unsqueeze(-1), flat)
        return embeds

    def _prefix_media(self, media: dict | None) -> dict:
        """{modality: connector tokens} of the prefix-fused parts; xattn parts get their media set instead."""
        out = {}
        for m, mb in (media or {}).items():
            if self.media_fusion(m) == "xattn":
                self.set_media_of(m, mb)
            elif mb["n"]:
                out[m] = self.media_embeddings(m, mb)
        return out

    @staticmethod
    def _row_media_counts(media: dict, n_rows: int) -> list[dict[int, list[int]]]:
        """Per row, {placeholder id: LM positions of each of its clips / videos} for PromptBuilder.encode."""
        rows: list[dict[int, list[int]]] = [{} for _ in range(n_rows)]
        for mb in media.values():
            token_id = mb["token_id"]
            start = 0
            for r, c in enumerate(mb["counts"]):
                rows[r][token_id] = mb["positions"][start : start + c]
                start += c
        return rows

    def set_media(self, pixel_values, counts, keys=None) -> None:
        """Cross-attention fusion: hand each sample's image tokens [B, K*N, Dv] (+ mask) to the installed blocks."""
        feats = self.encode_images(pixel_values, keys) if pixel_values is not None else None  # [n_img, N, Dv]
        n = self.num_vision_tokens
        k = max(counts) if counts else 0
        d = self.vision.hidden_size if feats is None else feats.shape[-1]
        media = torch.zeros(len(counts), k * n, d, dtype=torch.float32 if feats is None else feats.dtype)
        mask = torch.zeros(len(counts), k * n, dtype=torch.long)
        start = 0
        for i, c in enumerate(counts):
            if c:
                media[i, : c * n] = feats[start : start + c].reshape(c * n, d)
                mask[i, : c * n] = 1
            start += c
        self.connector.set_media(media, mask=None if bool(mask.all()) else mask)

    def prepare_inputs(
        self, input_ids, pixel_values=None, counts=None, keys=None, layouts=None, media=None
    ) -> torch.Tensor:
        """Input embeddings for the LM; for xattn fusion also sets the media (caller clears it). `media`: the
        collated audio / video parts ({modality: media_batch})."""
        extra = self._prefix_media(media)
        if self.connector is not None and self.fusion == "xattn":
            self.set_media(pixel_values, counts if counts is not None else [1] * input_ids.shape[0], keys)
            return self.merge_embeddings(input_ids, None, extra) if extra else self.lm.get_input_embeddings()(input_ids)
        img = self.image_embeddings(pixel_values, keys, layouts) if pixel_values is not None else None
        return self.merge_embeddings(input_ids, img, extra)

    def forward_logits(
        self, input_ids, attention_mask, pixel_values=None, counts=None, keys=None, layouts=None, media=None
    ):
        """Full-sequence logits [B, T, V] (training, scoring, the reference for cached decoding)."""
        try:
            embeds = self.prepare_inputs(input_ids, pixel_values, counts, keys, layouts, media)
            return self._lm_logits(embeds, attention_mask)
        finally:
            self.clear_all_media()

    def _answer_loss(self, embeds: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """lm_loss of the labelled positions. For LMs whose logits are `lm_head(last hidden state)` the head (a
        [D, V] matmul, a fifth of SmolLM2's compute per token) runs only where a label is: answers are a few
        tokens of each sequence."""
        base = self.base_lm()
        if getattr(base.config, "model_type", None) not in _PLAIN_HEAD_LMS:
            return lm_loss(self._lm_logits(embeds, attention_mask), labels, ignore_index=IGNORE_INDEX)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        hidden = base.get_decoder()(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # [B, T, D]
        target = labels[:, 1:]  # position t predicts token t+1
        keep = target != IGNORE_INDEX  # [B, T-1]
        logits = base.get_output_embeddings()(hidden[:, :-1][keep])  # [K, V]
        total = torch.nn.functional.cross_entropy(logits.float(), target[keep], reduction="sum")
        return total / keep.sum().clamp(min=1)

    def _lm_logits(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # correct for left and right padding alike
        return self.lm(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, use_cache=False
        ).logits

    # -- AnyRes tiling (LLaVA-1.6) -----------------------------------------------------------------------------
    def _setup_anyres(self, params: dict) -> None:
        from ..encoders.tiling import AnyResTiler

        if self.fusion != "prefix":
            raise ConfigError("vision.anyres tiling works with prefix connectors, not xattn")
        unknown = set(params) - {"grid_pinpoints", "max_tiles", "pad_color", "unpad"}
        if unknown:
            raise ConfigError(
                f"vision.anyres does not take {sorted(unknown)}; use grid_pinpoints or max_tiles "
                f"(and optionally pad_color, unpad)"
            )
        self.unpad = bool(params.pop("unpad", True))
        self.tiler = AnyResTiler.for_encoder(self.vision, **params)
        # the learned separator after each row of tile tokens (LLaVA-1.6 `image_newline`)
        self.image_newline = nn.Parameter(torch.randn(self.base_lm().config.hidden_size) * 0.02)

    def image_inputs(self, images) -> tuple[torch.Tensor, list[int], list | None]:
        """PIL images -> (pixel_values [n_tiles or n, 3, H, W], LM positions per image, AnyRes layouts or None)."""
        if self.vision is None:
            raise ValueError("a sample holds an image but this model has no vision tower: build it with vision=...")
        if self.tiler is None:
            return self.vision.preprocess(list(images)), [self.prompts.tokens_per_image] * len(images), None
        tiled = [self.tiler(im) for im in images]
        layouts = [(t.grid, t.original_size, t.num_tiles) for t in tiled]
        m = self.prompts.tokens_per_image
        counts = [
            self._merge_tiles(torch.zeros(n, m, 1), [(g, size, n)], newline=torch.zeros(1)).shape[0]
            for g, size, n in layouts
        ]
        return torch.cat([t.pixel_values for t in tiled]), counts, layouts

    def _merge_tiles(self, feats: torch.Tensor, layouts, newline=None) -> torch.Tensor:
        from ..encoders.tiling import merge_tile_features

        newline = self.image_newline if newline is None else newline
        out, start = [], 0
        for grid, size, n in layouts:
            out.append(merge_tile_features(feats[start : start + n], grid, size if self.unpad else None, newline))
            start += n
        return torch.cat(out)  # [sum M_i, D]
