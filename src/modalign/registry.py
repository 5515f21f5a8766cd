"""Build a component from a plain name->builder dict with errors that say what to change.

Every family (vision encoders, text encoders, connectors, datasets, eval suites) keeps a dict in its package;
a recipe names the entry and passes keyword parameters. This is the one place that turns a bad name or a bad
parameter into a message a user can act on.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any


class ConfigError(ValueError):
    """A recipe or command-line setting is wrong; the message says what to change."""


def build(registry: Mapping[str, Callable[..., Any]], family: str, name: str, /, **params: Any) -> Any:
    if name not in registry:
        known = ", ".join(sorted(registry)) or "(none registered)"
        raise ConfigError(f"unknown {family} {name!r}; choose one of: {known}")
    builder = registry[name]
    sig = inspect.signature(builder)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_any:
        allowed = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{family} {name!r} does not take {', '.join(unknown)}; its parameters are: {', '.join(allowed)}"
            )
        missing = [
            n
            for n, p in sig.parameters.items()
            if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in params
        ]
        if missing:
            raise ConfigError(f"{family} {name!r} needs {', '.join(missing)}")
    return builder(**params)
