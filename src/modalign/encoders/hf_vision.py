"""Vision towers backed by Hugging Face ViT-style models: a local CLIP / SigLIP / ViT checkpoint (`hf`), and the
from-scratch tower (`vit`, see vit.py) which is the same wrapper around a freshly initialised `ViTModel`.

Tokens and pooled vector, by family:
- CLIP: tokens = patch tokens of the chosen layer (CLS dropped); pooled = CLIP's `pooler_output`
  (post-layernorm of the final CLS), i.e. what CLIP's visual projection consumes.
- SigLIP: no CLS; tokens = all patch tokens; pooled = the attention-pooling head (or the token mean if the
  checkpoint has no head).
- ViT: tokens = patch tokens after the final layernorm (CLS dropped); pooled = that layer-normed CLS.
`feature_layer` picks a hidden layer for the tokens (LLaVA uses -2, the penultimate layer); the pooled vector
always comes from the last layer. `pool="mean"` replaces the pooled vector by the mean of the tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..files import quiet_hf_loading, weights_sha256
from ..registry import ConfigError
from .base import EncoderOutput, VisionEncoder
from .preprocess import ImageProcessing

_OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_POOLS = ("default", "cls", "mean")


class HFVisionTower(VisionEncoder):
    """Wraps a `CLIPVisionModel`, `SiglipVisionModel` or `ViTModel` (without its pooler) behind `VisionEncoder`."""

    def __init__(
        self,
        model: nn.Module,
        processing: ImageProcessing,
        family: str,
        spec: dict,
        feature_layer: int | None = None,
        pool: str = "default",
    ):
        super().__init__()
        if family not in ("clip", "siglip", "vit"):
            raise ConfigError(f"vision family {family!r} is not supported; use a CLIP, SigLIP or ViT checkpoint")
        if pool not in _POOLS:
            raise ConfigError(f"pool={pool!r} is not one of {list(_POOLS)}")
        if pool == "cls" and family == "siglip":
            raise ConfigError("SigLIP has no CLS token: use pool='default' (attention head) or pool='mean'")
        cfg = model.config
        n_layers = cfg.num_hidden_layers
        if feature_layer is not None and not -n_layers <= feature_layer <= n_layers:
            raise ConfigError(f"feature_layer={feature_layer} is outside the {n_layers} layers (use -1 .. -{n_layers})")
        self.model = model
        self.processing = processing
        self.family = family
        self.feature_layer = feature_layer
        self.pool = pool
        self.hidden_size = int(cfg.hidden_size)
        self.image_size = int(cfg.image_size)
        self.patch_size = int(cfg.patch_size)
        self.grid_size = self.image_size // self.patch_size
        self.num_tokens = self.grid_size**2
        self._spec = dict(spec)
        if (processing.height, processing.width) != (self.image_size, self.image_size):
            raise ConfigError(
                f"the image processor gives {processing.height}x{processing.width} images but the model expects "
                f"{self.image_size}x{self.image_size}; fix `crop_size`/`size` in preprocessor_config.json"
            )

    def config_dict(self) -> dict:
        """`{name, **params}` that rebuilds this tower via `VISION_ENCODERS[name](**params)`."""
        return dict(self._spec)

    def preprocess(self, images) -> torch.Tensor:
        return self.processing(images)  # [B, 3, H, W]

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values must be [B, 3, H, W], got {tuple(pixel_values.shape)}")
        if tuple(pixel_values.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(
                f"pixel_values are {tuple(pixel_values.shape[-2:])} but this tower takes "
                f"{self.image_size}x{self.image_size}; run images through preprocess() (or tile them with AnyRes)"
            )
        want_hidden = self.feature_layer is not None
        out = self.model(pixel_values=pixel_values, output_hidden_states=want_hidden)
        hidden = out.hidden_states[self.feature_layer] if want_hidden else out.last_hidden_state  # [B, 1?+N, D]
        has_cls = self.family != "siglip"
        tokens = hidden[:, 1:] if has_cls else hidden  # [B, N, D]
        if self.pool == "mean":
            pooled = tokens.mean(dim=1)
        elif self.family == "vit":
            pooled = out.last_hidden_state[:, 0]  # layer-normed CLS  [B, D]
        elif self.family == "siglip" and out.pooler_output is None:
            pooled = tokens.mean(dim=1)  # checkpoint without the attention-pooling head
        else:
            pooled = out.pooler_output  # CLIP: post_layernorm(CLS); SigLIP: attention head  [B, D]
        return EncoderOutput(tokens=tokens, pooled=pooled)


def _load_family(path: Path):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
    model_type = cfg.model_type
    if model_type in ("clip", "clip_vision_model"):
        from transformers import CLIPVisionModel

        return "clip", CLIPVisionModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    if model_type in ("siglip", "siglip_vision_model"):
        from transformers import SiglipVisionModel

        return "siglip", SiglipVisionModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    if model_type == "vit":
        from transformers import ViTModel

        model = ViTModel.from_pretrained(str(path), add_pooling_layer=False, local_files_only=True, dtype=torch.float32)
        return "vit", model
    raise ConfigError(
        f"{path} holds a {model_type!r} model; the `hf` vision tower loads clip, siglip or vit checkpoints"
    )


def build_hf_vision(*, path: str, feature_layer: int | None = None, pool: str = "default") -> HFVisionTower:
    """A local CLIP / SigLIP / ViT checkpoint directory (never downloads). Sizes and mean/std come from its
    `preprocessor_config.json` when present, else the family's defaults at the model's `image_size`."""
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ConfigError(
            f"vision tower path {path!r} is not a local checkpoint directory with a config.json; "
            "save one with `model.save_pretrained(dir)` (modalign never downloads weights)"
        )
    with quiet_hf_loading():
        family, model = _load_family(p)
    inner = getattr(model, "vision_model", model)  # transformers 4.x wraps the layers in .vision_model, 5.x not
    if family == "siglip" and pool == "mean" and getattr(inner, "use_head", False):
        # the attention-pooling head would be dead weight (and unused parameters under DDP)
        inner.use_head = False
        del inner.head
    size = int(model.config.image_size)
    if (p / "preprocessor_config.json").is_file():
        processing = ImageProcessing.from_pretrained_dir(p, size)
    elif family == "clip":
        processing = ImageProcessing.square(size, _OPENAI_CLIP_MEAN, _OPENAI_CLIP_STD)
    else:
        processing = ImageProcessing.square(size)
    spec = {"name": "hf", "path": str(path), "feature_layer": feature_layer, "pool": pool}
    tower = HFVisionTower(model, processing, family, spec, feature_layer=feature_layer, pool=pool)
    tower.pretrained_source = {"name": "hf", "path": str(p), "sha256": weights_sha256(p)}
    return tower
