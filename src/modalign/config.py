"""Typed, validated configuration shared by every layer: recipes (model + stages + evals) loaded from YAML.

A recipe is validated up front, before any weight is loaded, and every error names the field and what to change.
Components (encoders, connectors, datasets) are `{name: ..., <params>}` mappings: the name picks a builder from its
family's registry and the remaining keys are that builder's keyword parameters (checked by `registry.build`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from . import strict_yaml
from .registry import ConfigError

COMPONENT_NAMES = (
    "vision",
    "text",
    "head",
    "connector",
    "lm",
    "lm.lora",
    "audio",
    "audio_connector",
    "video",
    "video_connector",
)
# the towers a freeze plan can lock; a frozen one is a fixed function whose features the trainer caches
TOWER_NAMES = ("vision", "text", "audio", "video")
# parts a model config gained with audio and video: left out of a saved config when unset, so an image model's
# config.json is what it always was
_OPTIONAL_PARTS = ("audio", "audio_connector", "video", "video_connector")


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads `steps: true` as 1; a boolean where a number belongs is always a slip
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got the boolean {str(value).lower()}")
    return value


# Numbers in configs: no booleans, and (with allow_inf_nan=False on every model) no inf or nan.
Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
_STRICT = {"allow_inf_nan": False}


class Component(BaseModel):
    """A named component plus its builder's keyword parameters."""

    model_config = ConfigDict(extra="allow")
    name: str

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _as_data(value: Any) -> Any:
    """A dataset spec (a name or a mapping -> Component) or a dataset object (anything with len and indexing)."""
    if isinstance(value, Component) or value is None:
        return value
    if isinstance(value, str):
        return Component(name=value)
    if isinstance(value, dict):
        return Component.model_validate(value)
    if hasattr(value, "__getitem__") and hasattr(value, "__len__"):
        return value
    raise ValueError(
        f"data must be a dataset name, a spec {{name: ..., **params}} or a map-style Dataset object, "
        f"got {type(value).__name__}"
    )


def data_dump(value: Any) -> Any:
    """How a dataset object appears in a saved recipe / checkpoint state: its class and size."""
    if isinstance(value, Component) or value is None:
        return value.model_dump() if value is not None else None
    cls = type(value)
    return {"name": "<object>", "class": f"{cls.__module__}.{cls.__qualname__}", "len": len(value)}


def is_spec(data: Any) -> bool:
    """True for a registry spec, False for a dataset object handed over in Python."""
    return isinstance(data, Component)


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", **_STRICT)
    kind: Literal["dual", "vlm"]
    vision: Component | None = None  # a dual encoder pairs text with vision or audio; a vlm may have both
    text: Component | None = None  # dual encoders
    connector: Component | None = None  # vision-language models: the vision tower's connector
    lm: Component | None = None  # vision-language models
    embed_dim: Int = Field(256, gt=0)  # dual encoders: the shared space
    head: Literal["linear", "mlp"] = "linear"
    loss: Literal["clip", "siglip"] = "clip"
    siglip_chunk_size: Int | None = Field(None, gt=0)
    # "pair": each image's own caption is its one positive; "label": items sharing a class label are positives of
    # each other (UniCL), for class-level captions where same-class pairs are not negatives
    positives: Literal["pair", "label"] = "pair"
    # vision-language models: the system turn every conversation without one gets (None: the chat template's own)
    system_prompt: str | None = None
    # audio and video, each with its own tower and connector (vision-language models); a dual encoder may take
    # `audio:` in place of `vision:` (CLAP)
    audio: Component | None = None
    audio_connector: Component | None = None
    video: Component | None = None
    video_connector: Component | None = None

    @model_validator(mode="after")
    def _parts_for_kind(self) -> ModelConfig:
        if self.kind == "dual":
            if self.text is None:
                raise ValueError("a dual encoder needs a `text:` tower (e.g. `text: {name: minilm}`)")
            if (self.vision is None) == (self.audio is None):
                raise ValueError("a dual encoder pairs text with one tower: give `vision:` or `audio:`, not both")
            if self.video is not None or self.audio_connector is not None or self.video_connector is not None:
                raise ValueError("a dual encoder takes no video or connectors")
        if self.positives == "label" and self.loss != "clip":
            raise ValueError("positives: label is implemented for loss: clip (use positives: pair with siglip)")
        if self.kind == "vlm":
            if self.lm is None:
                raise ValueError("a vlm needs `lm:` (e.g. `{name: tiny-llama}`)")
            if self.vision is None and self.audio is None and self.video is None:
                raise ValueError("a vlm needs at least one of `vision:`, `audio:`, `video:`")
            for tower, connector in (
                ("vision", "connector"),
                ("audio", "audio_connector"),
                ("video", "video_connector"),
            ):
                if getattr(self, tower) is not None and getattr(self, connector) is None:
                    raise ValueError(f"a vlm with `{tower}:` needs `{connector}:` (e.g. `{{name: mlp}}`)")
                if getattr(self, tower) is None and getattr(self, connector) is not None:
                    raise ValueError(f"`{connector}:` is given but there is no `{tower}:` tower for it")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset_parts(self, handler):
        data = handler(self)
        for key in _OPTIONAL_PARTS:
            if data.get(key, 0) is None:
                del data[key]
        return data


class LoraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", **_STRICT)
    r: Int = Field(8, gt=0)
    alpha: Int = Field(16, gt=0)
    dropout: Float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj"]


class StageConfig(BaseModel):
    """One stage of training: its objective, data (a registered dataset spec, or a Dataset object from Python), steps,
    optimiser settings and freeze plan (`train`: the components that train; every other one is frozen)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, **_STRICT)
    name: str
    objective: Literal["contrastive", "caption", "instruct", "qformer"]
    data: Any

    _data = field_validator("data", mode="before")(classmethod(lambda cls, v: _as_data(v)))
    _dump_data = field_serializer("data")(lambda self, v: data_dump(v))
    steps: Int = Field(gt=0)
    batch_size: Int = Field(32, gt=0)
    grad_accum: Int = Field(1, gt=0)
    lr: Float = Field(1e-3, gt=0)
    weight_decay: Float = Field(0.0, ge=0)
    warmup_steps: Int = Field(0, ge=0)
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    train: list[str] = Field(min_length=1)  # the freeze plan: components listed here train, all others are frozen
    lora: LoraConfig | None = None
    max_grad_norm: Float | None = Field(1.0, gt=0)
    # a step whose loss or gradient norm is not finite is skipped (no update); this many in a row stop the run
    max_bad_steps: Int = Field(5, gt=0)
    log_every: Int = Field(10, gt=0)
    eval_every: Int = Field(0, ge=0)
    checkpoint_every: Int = Field(0, ge=0)
    # also a resumable checkpoint once this many wall-clock minutes have passed since the stage's last one (checked at
    # logging steps), so that a crash loses at most that much of a long run whatever a step costs; 0 turns it off
    checkpoint_minutes: Float = Field(10.0, ge=0)
    cache_frozen_features: StrictBool = True
    skip_bad: StrictBool = False
    # plug-ins by name: losses added to the objective (models/aux_losses.py) and transforms of each collated batch
    # (trainer/transforms.py), e.g. aux_losses: [{name: region_words, weight: 0.3}], transforms: [{name: token_noise}]
    aux_losses: list[Component] = []
    transforms: list[Component] = []
    # recompute the LM's decoder activations in the backward pass instead of keeping them (memory for compute)
    activation_checkpointing: StrictBool = False
    # bf16: forward passes under torch.autocast(bfloat16); auto: bf16 where the hardware computes in it natively (a
    # CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), else fp32 — on an AVX2 CPU a SmolLM2 step is ~27x slower
    precision: Literal["fp32", "bf16", "auto"] = "fp32"

    @field_validator("train")
    @classmethod
    def _known_components(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in COMPONENT_NAMES]
        if bad:
            raise ValueError(f"unknown component(s) {bad}; a freeze plan names some of {list(COMPONENT_NAMES)}")
        return v

    @model_validator(mode="after")
    def _lora_consistent(self) -> StageConfig:
        if "lm.lora" in self.train and self.lora is None:
            raise ValueError("`train` lists lm.lora: add a `lora:` block (e.g. `lora: {r: 8}`)")
        if "lm.lora" in self.train and "lm" in self.train:
            raise ValueError("train either `lm` (full) or `lm.lora` (adapters), not both")
        return self


class EvalConfig(BaseModel):
    """One evaluation suite run on a dataset; extra keys are the suite's parameters."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    suite: str
    data: Any = None

    _data = field_validator("data", mode="before")(classmethod(lambda cls, v: _as_data(v)))
    _dump_data = field_serializer("data")(lambda self, v: data_dump(v))

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RecipeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", **_STRICT)
    name: str
    description: str = ""
    seed: Int = 0
    model: ModelConfig
    # a saved model directory (e.g. runs/x/final) whose weights and tokenizer the first stage starts from
    init_from: str | None = None
    # how several processes (torchrun) share the work: ddp (replicate the model, average gradients) or fsdp
    # (PyTorch FSDP2: trainable parameters, gradients and optimizer state sharded across ranks; trainer/fsdp.py)
    strategy: Literal["ddp", "fsdp"] = "ddp"
    stages: list[StageConfig] = Field(min_length=1)
    eval: list[EvalConfig] = []

    @model_validator(mode="after")
    def _unique_stage_names(self) -> RecipeConfig:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        return self


def _parse_value(text: str) -> Any:
    return strict_yaml.load(text) if text != "" else ""


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `a.b.0.c=value` settings (values parsed as YAML) to a nested dict/list structure."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value (e.g. stages.0.steps=100)")
        key, value = item.split("=", 1)
        try:
            value = _parse_value(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({err})") from None
        node: Any = raw
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"override {key!r}: {part!r} is not an index of a list of {len(node)}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"override {key!r}: cannot descend into {type(node).__name__} at {part!r}")
    return raw


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"{source}: the recipe is not valid:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  - {loc}: {e['msg']}")
    return "\n".join(lines)


def validate_recipe(raw: dict, source: str = "recipe") -> RecipeConfig:
    try:
        return RecipeConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> RecipeConfig:
    path = Path(path)
    if not path.exists():
        if path.suffix in ("", ".yaml") and len(path.parts) == 1:  # a built-in recipe by name
            from .recipes import path as builtin

            path = builtin(str(path))
        else:
            from .recipes import available

            raise ConfigError(
                f"recipe {path} does not exist; give a YAML path or a built-in name: {', '.join(available())}"
            )
    try:
        raw = strict_yaml.load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping with name, model and stages")
    return validate_recipe(apply_overrides(raw, list(overrides or [])), str(path))
