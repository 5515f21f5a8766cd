"""A tower taken out of a saved modalign model: `VISION_ENCODERS["modalign"](path=RUN/final)`.

This is how a recipe builds on another: the from-scratch SigLIP vision tower trained on the shapes world becomes the
frozen vision tower of a LLaVA-style model. The saved directory's `config.json` names the tower and its parameters;
the tower is rebuilt through the same registry and its weights are the `<tower>.` entries of `model.safetensors`.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from ..registry import ConfigError, build


def load_tower(path: str, tower: str, registry: dict, family: str):
    directory = Path(path)
    cfg_file, weights = directory / "config.json", directory / "model.safetensors"
    if not cfg_file.exists() or not weights.exists():
        raise ConfigError(
            f"{family} 'modalign': {directory} is not a saved modalign model "
            "(needs config.json and model.safetensors; train a recipe first)"
        )
    meta = json.loads(cfg_file.read_text())
    spec = meta["model"].get(tower)
    if not spec:
        raise ConfigError(f"{family} 'modalign': the model in {directory} has no `{tower}` tower")
    params = {k: v for k, v in spec.items() if k != "name"}
    if spec["name"] == "modalign":  # a chain of reuse resolves to the original tower
        return load_tower(params["path"], params.get("tower", tower), registry, family)
    params.pop("anyres", None)  # tiling is the VLM's, not the tower's
    module = build(registry, family, spec["name"], **params)
    ref = meta.get("references", {}).get(tower)
    if ref is not None:  # saved as a reference: the rebuilt pretrained tower is the saved one if the hashes agree
        now = getattr(module, "pretrained_source", None) or {}
        if now.get("sha256") != ref.get("sha256"):
            raise ConfigError(
                f"{family} 'modalign': {directory} names its {tower} tower as {ref.get('name')!r} with "
                f"sha256 {ref.get('sha256')}, but the installed one has {now.get('sha256')}"
            )
        return module
    prefix = tower + "."
    state = {k[len(prefix) :]: v for k, v in load_file(str(weights)).items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.endswith("position_ids")]:
        raise ConfigError(
            f"{family} 'modalign': weights in {weights} do not fit the `{tower}` tower "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    # stored weights, not the package's: this tower is no longer the pretrained one
    module.__dict__.pop("pretrained_source", None)
    return module


def build_vision_from_checkpoint(*, path: str, tower: str = "vision"):
    from . import VISION_ENCODERS

    return load_tower(path, tower, VISION_ENCODERS, "vision encoder")


def build_text_from_checkpoint(*, path: str, tower: str = "text"):
    from . import TEXT_ENCODERS

    return load_tower(path, tower, TEXT_ENCODERS, "text encoder")


def build_audio_from_checkpoint(*, path: str, tower: str = "audio"):
    from . import AUDIO_ENCODERS

    return load_tower(path, tower, AUDIO_ENCODERS, "audio encoder")
