"""The models a demo serves: each RUN argument resolved to a saved model directory, loaded once, named, fingerprinted
and described (its parts from config.json, its training from the run folder when there is one).

A RUN is a saved model directory (it holds config.json, e.g. runs/x/final) or a run folder holding final/. The
fingerprint is the sha256 of the save's manifest (which lists the sha256 of every file), so cached embeddings are
reused exactly as long as the weights are the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..files import sha256_file, sha256_files
from ..registry import ConfigError

KINDS = {"vlm": "vision-language model", "dual": "dual encoder"}


@dataclass
class ServedModel:
    label: str  # unique name shown in the page
    directory: Path  # the saved model directory
    kind: str  # "vlm" | "dual"
    model: object
    fingerprint: str
    card: str  # markdown: what the model is and how it was trained


def resolve_run(path: str | Path) -> Path:
    """The saved model directory a RUN names: itself when it holds config.json, else its final/."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / "final" / "config.json").is_file():
        return path / "final"
    raise ConfigError(f"{path} is neither a saved model (no config.json) nor a run folder with final/config.json")


def run_name(directory: Path) -> str:
    """`runs/quickstart/llava/final` -> `llava`; a directory that is not a run's final/ keeps its own name."""
    directory = directory.resolve()
    return directory.parent.name if directory.name == "final" else directory.name


def fingerprint(directory: Path) -> str:
    manifest = directory / "manifest.json"
    if manifest.is_file():
        return sha256_file(manifest)
    return sha256_files([directory / "config.json", directory / "model.safetensors"], root=directory)


def _part(spec: dict | None) -> str:
    if not spec:
        return "-"
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name" and v is not None)
    return f"`{spec['name']}`" + (f" ({params})" if params else "")


def _stage_lines(run_dir: Path) -> list[str]:
    """One line per training stage, from the run's last checkpoint (the recipe) and summary.json (the losses)."""
    from ..trainer.checkpoint import latest_checkpoint, read_state

    def read(what):  # a run folder describes its model; a damaged file there only leaves the description shorter
        try:
            return what() or {}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    summary_path = run_dir / "summary.json"
    summary = read(lambda: json.loads(summary_path.read_text()) if summary_path.is_file() else {})
    ends = {s.get("name"): s for s in summary.get("stages", []) if isinstance(s, dict)}
    latest = latest_checkpoint(run_dir)
    recipe = read(lambda: read_state(latest).get("recipe") if latest is not None else {})
    stages = [st for st in recipe.get("stages") or list(ends.values()) if isinstance(st, dict)]
    lines = []
    for st in stages:
        data = st.get("data")
        data = data.get("name") if isinstance(data, dict) else data
        end = ends.get(st.get("name"), {})
        bits = [f"objective {st['objective']}" if st.get("objective") else None]
        bits += [f"on {data}" if data else None, f"{st['steps']} steps" if st.get("steps") else None]
        bits += [f"lr {st['lr']:g}" if st.get("lr") else None]
        bits += [f"trains {', '.join(st.get('train') or end.get('trainable') or [])}"]
        if end.get("loss") is not None:
            bits.append(f"final loss {end['loss']:.3g}")
        lines.append(f"- stage `{st.get('name')}`: " + ", ".join(b for b in bits if b))
    if recipe.get("seed") is not None:
        lines.append(f"- seed {recipe['seed']}")
    return lines


def model_card(label: str, directory: Path, meta: dict) -> str:
    """Markdown: the model's name, kind and parts, and how it was trained when its run folder says so."""
    cfg = meta["model"]
    lines = [f"**{label}** · {KINDS.get(cfg['kind'], cfg['kind'])} · `{directory}`", ""]
    if cfg["kind"] == "vlm":
        parts = {"vision": cfg.get("vision"), "connector": cfg.get("connector"), "lm": cfg.get("lm")}
    else:
        parts = {"vision": cfg.get("vision"), "text": cfg.get("text")}
        lines.append(f"- head `{cfg.get('head')}` to {cfg.get('embed_dim')} dimensions, `{cfg.get('loss')}` loss")
    lines += [f"- {name}: {_part(spec)}" for name, spec in parts.items()]
    refs = meta.get("references") or {}
    lines += [f"- {name} is the pretrained `{ref.get('name')}`, unchanged" for name, ref in refs.items()]
    if directory.name == "final":
        stages = _stage_lines(directory.parent)
        if stages:
            lines += ["", f"Training (run folder `{directory.parent}`):", *stages]
        recipe_file = next(
            (p for p in (directory.parent / "recipe.yaml", directory.parent / "recipe.json") if p.is_file()), None
        )
        if recipe_file is not None:
            lines += ["", f"Recipe ({recipe_file.name}):", "```", recipe_file.read_text()[:4000], "```"]
    return "\n".join(lines)


def load_served(runs: list[str | Path], trust_code: bool = False) -> list[ServedModel]:
    """Load every RUN once; labels are the run names, made unique with a number where two collide."""
    from ..models import load_model
    from ..models.saving import read_config

    served, taken = [], set()
    for run in runs:
        directory = resolve_run(run)
        meta = read_config(directory)
        label, k = run_name(directory), 2
        while label in taken:
            label, k = f"{run_name(directory)}-{k}", k + 1
        taken.add(label)
        model = load_model(directory, trust_code=trust_code)
        kind = meta["model"]["kind"]
        card = model_card(label, directory, meta)
        served.append(ServedModel(label, directory, kind, model, fingerprint(directory), card))
    return served
