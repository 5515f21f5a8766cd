"""VisionLanguageModel: any vision tower + connector + causal LM, trained on captions or LLaVA conversations.

Layout (nanoVLM style): `vision` (a VisionEncoder), `connector` (from `CONNECTORS`), `lm` (a transformers causal LM)
and its `tokenizer`. Two fusions:
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
from .parts import as_spec, module_spec, resolve, resolve_lm
from .saving import save_model, snapshot_versions
from .vlm_inference import InferenceMixin
from .vlm_lora import LoraMixin, ParameterView
from .vlm_prompts import IGNORE_INDEX, PromptBuilder

# transformers causal LMs whose logits are exactly lm_head(final hidden state): no scaling or soft-capping after it
_PLAIN_HEAD_LMS = {"llama", "mistral", "qwen2", "qwen3"}


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


def _sample_images(sample: dict) -> list:
    """A sample's images in text order: `images` (several) or `image` (one) or none."""
    if "images" in sample:
        return list(sample["images"])
    return [sample["image"]] if sample.get("image") is not None else []


class VisionLanguageModel(InferenceMixin, LoraMixin, AlignmentModel):
    # saves made before BLIP-2's stage-1 heads existed lack them; they load with fresh heads
    optional_state_prefixes = ("qformer_stage1.",)

    """A vision tower, a connector and a causal LM, built from parts.

    Each part is a registered name (`"efficientnet-lite0"`, `"mlp"`, `"smollm2-135m"`), a spec
    `{"name": ..., **params}`, a local Hugging Face checkpoint directory, or your own `nn.Module` (see
    models/parts.py); `tokenizer` goes with an LM given as a transformers model object, `text_corpus` with a
    from-scratch LM that trains its tokenizer (`tiny-llama`). `anyres` turns on LLaVA-1.6 tiling (AnyRes).
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
    ):
        super().__init__()
        lspec, lm_m, tok = resolve_lm(lm, tokenizer, text_corpus)
        # LM first, then the tower and the connector: the order random initialisations have always been drawn in
        spec = as_spec(vision, "vision encoder", VISION_ENCODERS)
        if spec is not None and "anyres" in spec.params():  # ours, not the tower's: tiling happens around it
            vparams = spec.params()
            anyres = vparams.pop("anyres") if anyres is None else anyres
            vision = Component(name=spec.name, **vparams)
        vspec, vision_m = resolve(vision, "vision encoder", VISION_ENCODERS)
        tokens = None
        if isinstance(connector, nn.Module):
            cspec, connector_m = module_spec(connector, "connector"), connector
        else:
            cspec = as_spec(connector, "connector", _connectors())
            cparams = cspec.params()
            if cparams.get("positions") is True:  # `positions: true` = one learned position per tower token
                cparams["positions"] = tokens = probe_vision_tokens(vision_m)
            connector_m = build(
                _connectors(),
                "connector",
                cspec.name,
                in_dim=vision_m.hidden_size,
                out_dim=lm_m.config.hidden_size,
                **cparams,
            )
        if anyres is not None:
            vspec = Component(name=vspec.name, **vspec.params(), anyres=dict(anyres))
        cfg = ModelConfig(kind="vlm", vision=vspec, connector=cspec, lm=lspec, system_prompt=system_prompt)
        self._setup(cfg, vision_m, connector_m, lm_m, tok, anyres, tokens)

    @classmethod
    def from_modules(cls, cfg: ModelConfig, vision, connector, lm, tokenizer, anyres=None, num_vision_tokens=None):
        """Assemble already built modules under a given config (what loading and exporting use)."""
        model = cls.__new__(cls)
        AlignmentModel.__init__(model)
        model._setup(cfg, vision, connector, lm, tokenizer, anyres, num_vision_tokens)
        return model

    def _setup(self, cfg, vision, connector, lm, tokenizer, anyres, num_vision_tokens) -> None:
        self.cfg = cfg
        self.vision = vision
        self.connector = connector
        self.lm = lm
        self.tokenizer = tokenizer
        self.fusion = getattr(connector, "fusion", "prefix")
        if self.fusion not in ("prefix", "xattn"):
            raise ConfigError(f"connector {cfg.connector.name!r} has fusion={self.fusion!r}; expected prefix or xattn")
        if self.fusion == "xattn":
            connector.install(self.base_lm().get_decoder().layers)
        # the builder may already know it (it sized the connector's positions): one probe forward, not two
        self.num_vision_tokens = num_vision_tokens or probe_vision_tokens(vision)
        per_image = connector.num_tokens(self.num_vision_tokens) if self.fusion == "prefix" else 1
        self.prompts = PromptBuilder(
            tokenizer, per_image, self.base_lm().config.max_position_embeddings, cfg.system_prompt
        )
        self.image_token_id = self.prompts.image_token_id
        self.qformer_stage1 = build_stage1(connector, tokenizer, self.base_lm().config.max_position_embeddings)
        self.tiler = None
        if anyres is not None:
            self._setup_anyres(dict(anyres))
        self._feature_cache = None
        self._lora_cfg: LoraConfig | None = None
        self.aux_losses: list = []
        # pretrained parts as built: a save names them instead of storing them while they stay unchanged
        self._pristine = {"vision": snapshot_versions(self.vision), "lm": snapshot_versions(self.base_lm())}

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: ModelConfig, text_corpus=None) -> VisionLanguageModel:
        if cfg.kind != "vlm":
            raise ConfigError(f"VisionLanguageModel needs model.kind: vlm, got {cfg.kind!r}")
        return cls(cfg.vision, cfg.connector, cfg.lm, text_corpus=text_corpus, system_prompt=cfg.system_prompt)

    @classmethod
    def rebuild(cls, meta: dict, directory: Path) -> VisionLanguageModel:
        """The model a save describes, before its stored tensors are loaded: referenced parts come pretrained."""
        cfg = ModelConfig.model_validate(meta["model"])
        tok = saved_tokenizer(directory)
        if "lm" in meta.get("references", {}):
            lm, _ = build_lm(cfg.lm.name, cfg.lm.params())
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
        """The config's vision tower and connector, built fresh, around a given LM and tokenizer."""
        vparams = cfg.vision.params()
        anyres = vparams.pop("anyres", None)
        vision = build(VISION_ENCODERS, "vision encoder", cfg.vision.name, **vparams)
        cparams = cfg.connector.params()
        tokens = cparams["positions"] if isinstance(cparams.get("positions"), int) else None
        if cparams.get("positions") is True:
            cparams["positions"] = tokens = probe_vision_tokens(vision)
        connector = build(
            _connectors(),
            "connector",
            cfg.connector.name,
            in_dim=vision.hidden_size,
            out_dim=lm.config.hidden_size,
            **cparams,
        )
        return cls.from_modules(cfg, vision, connector, lm, tokenizer, anyres=anyres, num_vision_tokens=tokens)

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
        return {
            "vision": getattr(self.vision, "pretrained_source", None),
            "lm": getattr(self.base_lm(), "pretrained_source", None),
        }

    def base_lm(self) -> nn.Module:
        """The transformers CausalLM under any peft wrapper."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    # -- the AlignmentModel contract ---------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        """vision, connector, lm (without adapters or installed cross-attention blocks), lm.lora (adapters)."""
        connector_ids = {id(p) for p in self.connector.parameters()}
        lora = [(n, p) for n, p in self.lm.named_parameters() if "lora_" in n]
        lora_ids = {id(p) for _, p in lora}
        if not connector_ids & {id(p) for p in self.lm.parameters()} and not lora:
            lm_part: nn.Module = self.lm
        else:  # xattn blocks and LoRA weights live inside the LM's modules: give the base weights on their own
            lm_part = ParameterView(
                (n, p) for n, p in self.lm.named_parameters() if id(p) not in connector_ids | lora_ids
            )
        connector: nn.Module = self.connector
        if self.qformer_stage1 is not None:  # BLIP-2 trains the Q-Former's text side with it
            connector = nn.ModuleList([self.connector, self.qformer_stage1])
        parts = {"vision": self.vision, "connector": connector, "lm": lm_part}
        if lora:
            parts["lm.lora"] = ParameterView(lora)
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
        for s in samples:
            imgs = _sample_images(s)
            if "conversations" in s:
                text, spans = self.prompts.instruct_example(s["conversations"], len(imgs))
            elif "text" in s:
                if not imgs:
                    raise ValueError(f"caption sample {s.get('id')!r} has no image")
                text, spans = self.prompts.caption_example(s["text"], len(imgs))
            else:
                raise ValueError(f"sample {s.get('id')!r}: expected `text` (caption) or `conversations` (instruct)")
            rows.append((text, spans, len(imgs)))
            images += imgs
            counts.append(len(imgs))
            # frozen-tower features are keyed by image content: stages and datasets whose ids collide (same scene
            # index, other image size) can never read each other's entries
            keys += [image_key(im) for im in imgs]
        pixel_values, token_counts, layouts = self.image_inputs(images) if images else (None, [], None)
        encoded, start = [], 0
        for text, spans, n in rows:
            encoded.append(self.prompts.encode(text, spans, token_counts[start : start + n]))
            start += n
        batch = self.prompts.pad([e[0] for e in encoded], [e[1] for e in encoded], side="right")
        batch["pixel_values"] = pixel_values
        batch["image_counts"] = counts
        batch["image_layouts"] = layouts
        if layouts is not None:  # one cache entry per tile
            keys = [f"{k}@{t}" for k, (_, _, n_tiles) in zip(keys, layouts) for t in range(n_tiles)]
        batch["image_keys"] = keys
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
        labels = batch["labels"]
        if self.aux_losses and batch.get("pixel_values") is not None and self.fusion == "prefix" and self.tiler is None:
            # the connector's tokens feed the LM and the auxiliary losses: computed once
            img = self.image_embeddings(batch["pixel_values"], batch.get("image_keys"))
            embeds = self.merge_embeddings(batch["input_ids"], img)
        else:
            embeds = self.prepare_inputs(
                batch["input_ids"],
                batch.get("pixel_values"),
                batch.get("image_counts"),
                batch.get("image_keys"),
                batch.get("image_layouts"),
            )
        try:
            # next-token prediction; only answer/caption tokens carry labels
            loss = self._answer_loss(embeds, batch["attention_mask"], labels)
        finally:
            if self.fusion == "xattn":
                self.connector.clear_media()
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

    def merge_embeddings(self, input_ids: torch.Tensor, image_embeds: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings [B, T, D] with the `<image>` placeholders overwritten row-major by `image_embeds`."""
        embeds = self.lm.get_input_embeddings()(input_ids)  # [B, T, D]
        mask = input_ids == self.image_token_id  # [B, T]
        n_slots = int(mask.sum())
        n_feats = 0 if image_embeds is None else image_embeds.numel() // embeds.shape[-1]
        if n_slots != n_feats:
            raise ValueError(
                f"{n_slots} image placeholder tokens but {n_feats} image embeddings: each image needs "
                f"one <image> marker in its text"
            )
        if image_embeds is None:
            return embeds
        return embeds.masked_scatter(mask.unsqueeze(-1), image_embeds.to(embeds.dtype).reshape(-1, embeds.shape[-1]))

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

    def prepare_inputs(self, input_ids, pixel_values=None, counts=None, keys=None, layouts=None) -> torch.Tensor:
        """Input embeddings for the LM; for xattn fusion also sets the media (caller clears it)."""
        if self.fusion == "xattn":
            self.set_media(pixel_values, counts if counts is not None else [1] * input_ids.shape[0], keys)
            return self.lm.get_input_embeddings()(input_ids)
        img = self.image_embeddings(pixel_values, keys, layouts) if pixel_values is not None else None
        return self.merge_embeddings(input_ids, img)

    def forward_logits(self, input_ids, attention_mask, pixel_values=None, counts=None, keys=None, layouts=None):
        """Full-sequence logits [B, T, V] (training, scoring, the reference for cached decoding)."""
        embeds = self.prepare_inputs(input_ids, pixel_values, counts, keys, layouts)
        try:
            return self._lm_logits(embeds, attention_mask)
        finally:
            if self.fusion == "xattn":
                self.connector.clear_media()

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
