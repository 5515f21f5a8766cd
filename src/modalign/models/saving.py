"""Saving and loading every modalign model: what was trained is stored, a pretrained part left as it came is named.

A saved model is a directory:
  config.json        {"format": 2, "model": ModelConfig, "references": {component: {name, sha256}}, ...extras}
  model.safetensors  every tensor except those of referenced parts (shared tensors once)
  manifest.json      sha256 of every other file (tokenizer and LM config included), written last; checked on
                     load, where a changed, missing or added file (other than *.md notes) is refused by name
  (+ what the model class adds: a VLM's tokenizer files and its LM's HF config under lm/)

A component is stored as a reference when it has a pretrained source (a packaged tower, a packaged LM, a local
checkpoint directory: `module.pretrained_source = {"name", "sha256", ...}`) and none of its tensors changed since
the model was built (PyTorch's per-tensor version counters: an optimizer step, `load_state_dict` or a batch-norm
statistics update all bump them). On load the part is rebuilt from its config, which loads the same pretrained
weights, and its source's sha256 must equal the recorded one. LiT's save is then its heads; a LLaVA on a frozen
SmolLM2 its connector. `save_model(..., full=True)` stores everything (a self-contained copy).

The directory is written under a temporary name, fsynced and renamed into place, so a crash mid-save leaves the
previous version. No pickle anywhere.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..files import fsync_dir, fsync_tree, sha256_file
from ..registry import ConfigError

FORMAT = 2
# the state-dict prefix of each component whose buffers (not only parameters) a reference covers
_PREFIX = {"vision": "vision.", "text": "text.", "lm": "lm.", "audio": "audio.", "video": "video."}
CONFIG, WEIGHTS, MANIFEST = "config.json", "model.safetensors", "manifest.json"


# -- which parts are references ---------------------------------------------------------------------------------
def snapshot_versions(module: nn.Module) -> dict[int, int]:
    """id -> version counter of every tensor a module holds (taken when a model is built)."""
    return {id(t): t._version for t in [*module.parameters(), *module.buffers()]}


def unchanged(module: nn.Module, snapshot: dict[int, int]) -> bool:
    tensors = [*module.parameters(), *module.buffers()]
    return all(snapshot.get(id(t)) == t._version for t in tensors)


def reference_parts(model, full: bool = False) -> dict[str, dict]:
    """{component: its pretrained source} for the parts a save names instead of storing."""
    if full:
        return {}
    if not hasattr(model, "pretrained_sources"):
        return {}  # a model without pretrained parts (a user's or a test's): everything is stored
    parts = model.components()
    pristine = getattr(model, "_pristine", {})
    refs = {}
    for name, source in model.pretrained_sources().items():
        snap = pristine.get(name)
        if source and snap is not None and name in parts and unchanged(parts[name], snap):
            refs[name] = dict(source)
    return refs


def _shared_groups(model: nn.Module) -> dict[str, str]:
    """key -> the first (sorted) key holding the same tensor: tied embeddings, blocks installed in two places."""
    first: dict[int, str] = {}
    alias: dict[str, str] = {}
    for key, t in sorted(model.state_dict(keep_vars=True).items()):
        owner = first.setdefault(id(t), key)
        alias[key] = owner
    return alias


def excluded_keys(model: nn.Module, refs) -> set[str]:
    """State-dict keys a reference covers: its parameters, and the buffers under its prefix."""
    parts = model.components()
    ids = {id(p) for c in refs for p in parts[c].parameters()}
    prefixes = tuple(_PREFIX[c] for c in refs if c in _PREFIX)
    out = set()
    for key, t in model.state_dict(keep_vars=True).items():
        if id(t) in ids or (not isinstance(t, nn.Parameter) and prefixes and key.startswith(prefixes)):
            out.add(key)
    return out


def trained_tensors(model: nn.Module, refs) -> dict[str, torch.Tensor]:
    """The tensors a save stores: everything but the references, each shared tensor once."""
    skip = excluded_keys(model, refs)
    alias = _shared_groups(model)
    out = {}
    for key, t in model.state_dict().items():
        if key not in skip and alias[key] == key:
            out[key] = t.detach().contiguous().cpu()
    return out


def load_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], refs, where: str) -> None:
    """Load stored tensors; every tensor of the model must be either loaded, shared with a loaded one, or referenced."""
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    alias = _shared_groups(model)
    skip = excluded_keys(model, refs)
    loaded = set(tensors)
    optional = tuple(getattr(model, "optional_state_prefixes", ()))
    lost = sorted(
        k for k in missing if k not in skip and alias.get(k) not in loaded and not (optional and k.startswith(optional))
    )
    if unexpected or lost:
        raise ConfigError(
            f"{where}: the weights do not fit the model (missing {lost[:5]}, unexpected {sorted(unexpected)[:5]}); "
            "load it with the modalign version and config that saved it"
        )


# -- directories -------------------------------------------------------------------------------------------------
def _manifest(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): sha256_file(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def publish(tmp: Path, directory: Path) -> None:
    """Move a finished temporary directory into place, replacing an older save whole."""
    fsync_tree(tmp)
    old = directory.with_name(f".{directory.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    fsync_dir(directory.parent)  # the rename itself survives a power cut
    shutil.rmtree(old, ignore_errors=True)


def save_model(model, directory: str | Path, full: bool = False) -> Path:
    """Write `model` to `directory` (see the module docstring); returns the directory."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    refs = reference_parts(model, full)
    meta = {"format": FORMAT, "model": model.cfg.model_dump(mode="json"), "references": refs, **model.save_extras()}
    (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
    save_file(trained_tensors(model, refs), str(tmp / WEIGHTS))
    model.save_files(tmp)
    (tmp / MANIFEST).write_text(json.dumps({"files": _manifest(tmp)}, indent=1))
    publish(tmp, directory)
    return directory


def read_config(directory: str | Path) -> dict:
    """The saved config.json of a model directory, with errors that name the directory."""
    directory = Path(directory)
    path = directory / CONFIG
    if not directory.is_dir() or not path.is_file():
        raise ConfigError(
            f"{directory} is not a saved modalign model (no {CONFIG}); give a directory such as runs/x/final"
        )
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err}); the save is damaged") from None
    if not isinstance(meta, dict) or "model" not in meta:
        raise ConfigError(f"{path} is not a modalign model config (no `model` entry)")
    if not (directory / WEIGHTS).is_file():
        raise ConfigError(f"{directory} has no {WEIGHTS}; the save is incomplete")
    return meta


def verify_files(directory: str | Path, meta: dict | None = None) -> None:
    """Check every file against the manifest (saves of format 2); a damaged, missing or added file is named.

    Added files count because loaders read files by name: an `added_tokens.json` or `chat_template.jinja` dropped
    into the folder would change the tokenizer as surely as an edit would. Only notes (`*.md`) may be added."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        if (meta or {}).get("format", 1) >= 2:  # format 2 always writes one: its absence is damage
            raise ConfigError(f"{directory} has no {MANIFEST} (a format-2 save always has one); the save is damaged")
        return  # saved before manifests existed
    try:
        files = json.loads(path.read_text())["files"]
        if not isinstance(files, dict):
            raise TypeError("`files` is not a mapping")
    except (ValueError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{path} is not a valid manifest ({err}); the save is damaged") from None
    for name, digest in files.items():
        p = directory / name
        if not p.is_file():
            raise ConfigError(f"{directory}: {name} is missing (listed in {MANIFEST}); the save is incomplete")
        if sha256_file(p, fresh=True) != digest:
            raise ConfigError(f"{p} does not match its sha256 in {MANIFEST}: the file was changed or damaged")
    added = sorted(set(_present(directory)) - set(files))
    if added:
        raise ConfigError(
            f"{directory}: {', '.join(added)} not in {MANIFEST}: files were added after the save (a loader would "
            "read them); remove them or save the model again"
        )


def _present(directory: Path) -> list[str]:
    return [
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and p.name != MANIFEST and p.suffix != ".md"
    ]


def check_references(model, refs: dict, directory) -> None:
    if not refs:
        return
    sources = model.pretrained_sources()
    for name, ref in refs.items():
        now = sources.get(name)
        if not now:
            raise ConfigError(
                f"{directory}: the saved model names its {name} as {ref.get('name')!r}, but the rebuilt "
                f"{name} has no pretrained source; save it again with full=True"
            )
        if now.get("sha256") != ref.get("sha256"):
            raise ConfigError(
                f"{directory}: its {name} is the pretrained {ref.get('name')!r} with sha256 {ref.get('sha256')}, but "
                f"what is installed here has sha256 {now.get('sha256')}; install the version it was trained with"
            )


def load_weights_into(model, directory: str | Path, meta: dict) -> None:
    """Fill a freshly built model from a save: check references and files, then load the stored tensors."""
    directory = Path(directory)
    refs = meta.get("references", {}) if meta.get("format", 1) >= 2 else {}
    check_references(model, refs, directory)
    try:
        tensors = load_file(str(directory / WEIGHTS))
    except (SafetensorError, OSError) as err:  # only reachable for saves without a manifest
        raise ConfigError(f"{directory / WEIGHTS} cannot be read ({err}); the save is damaged") from None
    load_tensors(model, tensors, refs, str(directory))
