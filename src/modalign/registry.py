"""Build a component from a plain name->builder dict with errors that say what to change.

Every family (vision encoders, text encoders, connectors, datasets, eval suites) keeps a dict in its package;
a recipe names the entry and passes keyword parameters. This is the one place that turns a bad name or a bad
parameter into a message a user can act on.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any


class ConfigError(ValueError):
    """A recipe or command-line setting is wrong; the message says what to change."""


# Builder arguments that are not configuration (handed over by the code that builds, never written in a recipe).
RUNTIME_PARAMS = frozenset({"text_corpus", "in_dim", "out_dim"})
_TRUST_CODE = contextvars.ContextVar("modalign_trust_code", default=True)


@contextlib.contextmanager
def trusted_code(trust: bool):
    """Within this block, a spec naming a Python class (`{name: module, target: ...}`) may (or may not) import it.

    Recipes and the Python API are written by the user, so they are trusted; a saved model received from elsewhere
    is loaded untrusted unless the caller says otherwise (`load(dir, trust_code=True)`)."""
    token = _TRUST_CODE.set(trust)
    try:
        yield
    finally:
        _TRUST_CODE.reset(token)


def import_target(target: str):
    """`pkg.module:Name` -> the object, if code may be imported here (see `trusted_code`)."""
    if not _TRUST_CODE.get():
        raise ConfigError(
            f"this model is built from the Python class {target}; importing it runs its code. Load it with "
            "trust_code=True (command line: --trust-code) only if you trust where the model came from"
        )
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"module target {target!r} must look like package.module:ClassName")
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot import {target} ({err}); install the package that defines it") from err
    return obj


def build_module(*, target: str, config: dict | None = None, **context: Any) -> Any:
    """The `module` builder of every family: a user's own class, `target` = "package.module:Class", called with
    `config`. Sizes the building code knows (a connector's in_dim / out_dim) are passed on when the class takes them
    and the config does not fix them."""
    cls = import_target(target)
    kwargs = dict(config or {})
    try:
        accepted = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        accepted = {}
    for key, value in context.items():
        if key in accepted and key not in kwargs:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"module {target} could not be built from {kwargs!r}: {err}") from err


def parameters_of(builder: Callable) -> dict[str, Any]:
    """{name: default (inspect.Parameter.empty when required)} of a builder's configuration parameters."""
    sig = inspect.signature(builder)
    return {
        n: p.default
        for n, p in sig.parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in RUNTIME_PARAMS and n != "self"
    }


def _bad_number(value: Any, default: Any) -> str | None:
    """What is wrong with `value` for a parameter whose default is `default`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    numeric_default = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric_default and isinstance(value, bool):
        return f"expected a number (default {default!r}), got the boolean {str(value).lower()}"
    return None


def check_param_values(builder: Callable, family: str, name: str, params: Mapping[str, Any]) -> None:
    """No inf / nan, and no boolean where the parameter's default is a number (`num_layers: true` reads as 1)."""
    defaults = parameters_of(builder)
    for key, value in params.items():
        problem = _bad_number(value, defaults.get(key, inspect.Parameter.empty))
        if problem:
            raise ConfigError(f"{family} {name!r}: parameter {key}: {problem}")


def build(registry: Mapping[str, Callable[..., Any]], family: str, name: str, /, **params: Any) -> Any:
    if name not in registry:
        known = ", ".join(sorted(registry)) or "(none registered)"
        raise ConfigError(f"unknown {family} {name!r}; choose one of: {known}")
    builder = registry[name]
    sig = inspect.signature(builder)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_any:
        allowed = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        shown = [n for n in allowed if n not in RUNTIME_PARAMS]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{family} {name!r} does not take {', '.join(unknown)}; "
                f"its parameters are: {', '.join(shown) or '(none)'}"
            )
        missing = [
            n
            for n, p in sig.parameters.items()
            if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in params
        ]
        if missing:
            raise ConfigError(f"{family} {name!r} needs {', '.join(missing)}")
    check_param_values(builder, family, name, params)
    return builder(**params)
