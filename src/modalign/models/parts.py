"""Turn what a user hands over as a model part into a built module and the spec that rebuilds it.

A part may be
- a registered name (`"efficientnet-lite0"`, `"mlp"`, `"smollm2-135m"`), or a spec `{"name": ..., **params}`;
- a local Hugging Face checkpoint directory (or, for an LM, a `.gguf` file): the family's `hf` builder;
- the user's own `nn.Module`: used as it is, and recorded as `{"name": "module", "target": "pkg.mod:Class",
  "config": {...}}` so that a saved model rebuilds it (`Class(**config)`) on load. The module says its constructor
  arguments through `get_config()` or a `config` dict attribute; its class must be importable (not in `__main__`).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..config import Component
from ..registry import ConfigError, build

PathLike = str | Path


def module_spec(module: nn.Module, family: str) -> Component:
    """The spec that rebuilds a user's module: its importable class and its constructor arguments."""
    cls = type(module)
    if cls.__module__ == "__main__":
        raise ConfigError(
            f"{family} {cls.__name__} is defined in the script being run (__main__): move the class into an "
            "importable module so that a saved model can rebuild it"
        )
    config = module.get_config() if callable(getattr(module, "get_config", None)) else getattr(module, "config", None)
    if hasattr(config, "to_dict") and not isinstance(config, dict):
        config = config.to_dict()
    if not isinstance(config, dict):
        raise ConfigError(
            f"{family} {cls.__name__}: give the class a `get_config()` method (or a `config` dict attribute) that "
            "returns its constructor's keyword arguments, so that a saved model can rebuild it"
        )
    return Component(name="module", target=f"{cls.__module__}:{cls.__qualname__}", config=config)


def as_spec(part, family: str, registry: dict) -> Component | None:
    """A name, a path or a mapping as a Component; None for a module (the caller keeps it as it is)."""
    if isinstance(part, nn.Module):
        return None
    if isinstance(part, Component):
        return part
    if isinstance(part, dict):
        if "name" not in part:
            raise ConfigError(f"{family} spec {part!r} needs a `name` (one of {', '.join(sorted(registry))})")
        return Component.model_validate(part)
    if isinstance(part, (str, Path)):
        text = str(part)
        if text in registry:
            return Component(name=text)
        p = Path(text).expanduser()
        if (p.is_dir() and (p / "config.json").is_file()) or (p.suffix == ".gguf" and p.is_file()):
            return Component(name="hf", path=str(p))
        raise ConfigError(
            f"unknown {family} {text!r}: give a registered name ({', '.join(sorted(registry))}), a local Hugging "
            "Face checkpoint directory, a spec {'name': ..., **params}, or your own nn.Module"
        )
    raise ConfigError(f"{family} must be a name, a path, a spec dict or an nn.Module, got {type(part).__name__}")


def resolve(part, family: str, registry: dict, **build_kw) -> tuple[Component, nn.Module]:
    """(spec, module) for a tower or connector part; `build_kw` are builder arguments that are not config
    (a connector's in_dim / out_dim)."""
    spec = as_spec(part, family, registry)
    if spec is None:
        return module_spec(part, family), part
    return spec, build(registry, family, spec.name, **build_kw, **spec.params())


def resolve_lm(part, tokenizer=None, text_corpus=None) -> tuple[Component, nn.Module, object]:
    """(spec, causal LM, tokenizer) for an LM part: a name, a spec, a checkpoint path, or a transformers model object
    (then `tokenizer` is needed; it is stored in full with the save, having no pretrained source here)."""
    from .lm import LANGUAGE_MODELS, add_placeholder_tokens

    if isinstance(part, nn.Module):
        if tokenizer is None:
            raise ConfigError("an LM given as a model object needs its tokenizer: pass tokenizer=")
        if not hasattr(part, "config") or not hasattr(part, "get_input_embeddings"):
            raise ConfigError(f"lm {type(part).__name__} is not a transformers causal LM (PreTrainedModel)")
        add_placeholder_tokens(part, tokenizer)
        source = str(getattr(part.config, "_name_or_path", "") or "")
        return Component(name="hf", path=source), part, tokenizer
    spec = as_spec(part, "language model", LANGUAGE_MODELS)
    model, tok = build(LANGUAGE_MODELS, "language model", spec.name, text_corpus=text_corpus, **spec.params())
    return spec, model, tok
