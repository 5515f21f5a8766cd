"""The built-in recipes, shipped with the package: `modalign train llava-shapes` or `ma.recipe_path("llava-shapes")`.

A recipe argument anywhere (CLI, `ma.run_recipe`, `load_recipe`) may be a YAML path or one of these names.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..registry import ConfigError


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def available() -> list[str]:
    """Names of the built-in recipes."""
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def path(name: str) -> Path:
    """The YAML file of a built-in recipe."""
    p = _folder() / f"{name.removesuffix('.yaml')}.yaml"
    if not p.is_file():
        raise ConfigError(f"no built-in recipe {name!r}; choose one of: {', '.join(available())} (or give a YAML path)")
    return p
