"""What is registered, by family, with each builder's parameters and defaults: `modalign list` and `ma.components()`."""

from __future__ import annotations

import inspect
import sys
from typing import Any

from .registry import ConfigError, parameters_of

OBJECTIVES = {
    "contrastive": "dual encoders: CLIP (InfoNCE) or SigLIP (sigmoid) loss over image-text pairs",
    "caption": "vision-language models: next-token loss on a caption after the image",
    "instruct": "vision-language models: next-token loss on the assistant turns of a conversation",
    "qformer": "BLIP-2 stage 1 on the Q-Former: image-text contrastive + matching + grounded generation",
}


def _registries() -> dict[str, dict]:
    from .connectors import CONNECTORS
    from .data import DATASETS
    from .encoders import AUDIO_ENCODERS, TEXT_ENCODERS, VIDEO_ENCODERS, VISION_ENCODERS
    from .eval.suites import SUITES
    from .models.aux_losses import AUX_LOSSES
    from .models.lm import LANGUAGE_MODELS
    from .tools import TOOLS
    from .trainer.transforms import BATCH_TRANSFORMS

    return {
        "vision": VISION_ENCODERS,
        "text": TEXT_ENCODERS,
        "audio": AUDIO_ENCODERS,
        "video": VIDEO_ENCODERS,
        "connectors": CONNECTORS,
        "lms": LANGUAGE_MODELS,
        "datasets": DATASETS,
        "suites": SUITES,
        "aux_losses": AUX_LOSSES,
        "transforms": BATCH_TRANSFORMS,
        "tools": TOOLS,
    }


FAMILIES = (
    "vision",
    "text",
    "audio",
    "video",
    "connectors",
    "lms",
    "datasets",
    "suites",
    "objectives",
    "aux_losses",
    "transforms",
    "tools",
)
_SUITE_ARGS = {"model", "dataset", "out_dir", "progress"}


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    if isinstance(obj, type) and not obj.__dict__.get("__doc__"):
        # a class without its own docstring would show its base's (torch's Dataset: "An abstract class ..."): its
        # module's docstring says what it is instead
        doc = inspect.cleandoc(getattr(sys.modules.get(obj.__module__), "__doc__", None) or "")
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _params(builder, family: str) -> dict[str, Any]:
    params = parameters_of(builder)
    if family == "suites":
        params = {k: v for k, v in params.items() if k not in _SUITE_ARGS}
    return {k: ("(required)" if v is inspect.Parameter.empty else v) for k, v in params.items()}


def catalog(family: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{family: {name: {"params": {name: default}, "doc": first paragraph}}}; one family when named."""
    if family is not None and family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r}; choose one of: {', '.join(FAMILIES)}")
    regs = _registries()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for fam in [family] if family else FAMILIES:
        if fam == "objectives":
            out[fam] = {k: {"params": {}, "doc": v} for k, v in OBJECTIVES.items()}
            continue
        out[fam] = {
            name: {"params": _params(builder, fam), "doc": _summary(builder)}
            for name, builder in sorted(regs[fam].items())
        }
    return out


def format_catalog(table: dict) -> str:
    lines = []
    for fam, entries in table.items():
        lines.append(f"{fam}:")
        for name, info in entries.items():
            params = ", ".join(
                f"{k}={v!r}" if v != "(required)" else f"{k} (required)" for k, v in info["params"].items()
            )
            lines.append(f"  {name}" + (f"({params})" if params else ""))
            if info["doc"]:
                lines.append(f"      {info['doc'][:150]}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
