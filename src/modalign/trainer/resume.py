"""What a resume may change and where it starts: the comparable part of a recipe, the newest intact checkpoint,
and the output folder's lock, each agreed by every rank.

A resume refuses a changed model, seed or training setting, accepts changed bookkeeping (when to log, evaluate and
save), and accepts the recovery settings (lr, schedule, warmup, clipping, max_bad_steps) that rescue a run that
diverged — the trainer logs those as a `resume_changed` event.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pydantic import ValidationError

from ..config import ModelConfig, RecipeConfig, StageConfig
from ..registry import ConfigError
from . import checkpoint as ckpt
from .distributed import DistInfo, broadcast_object
from .integrity import latest_intact
from .lock import output_lock

# Stage settings that decide when to log, evaluate and save, never what the weights become: a resume may change them.
BOOKKEEPING = ("log_every", "eval_every", "checkpoint_every", "checkpoint_minutes")
# Settings a resume may change to rescue a run that diverged (the change is logged as a `resume_changed` event).
RECOVERY = ("lr", "schedule", "warmup_steps", "max_grad_norm", "max_bad_steps")


def comparable(recipe: RecipeConfig) -> dict:
    # What must not change across a resume; eval settings and descriptions may.
    return {
        "seed": recipe.seed,
        "model": recipe.model.model_dump(mode="json"),
        **({"init_from": recipe.init_from} if recipe.init_from else {}),
        "stages": [s.model_dump(mode="json") for s in recipe.stages],
    }


def _through_schema(schema, fields: dict) -> dict:
    """`fields` as the current schema reads them: a field added since a checkpoint was written compares at its
    default, so upgrading modalign does not make every older checkpoint "a different recipe"."""
    try:
        return schema.model_validate(fields).model_dump(mode="json")
    except (ValidationError, TypeError):
        return fields  # not readable by today's schema: compared as written (and so found different)


def training_part(full: dict) -> dict:
    # Checkpoints store the whole comparable dict, so both sides are cut the same way.
    stages = [_through_schema(StageConfig, s) for s in full["stages"]]
    return {
        **full,
        "model": _through_schema(ModelConfig, full["model"]),
        "stages": [{k: v for k, v in s.items() if k not in BOOKKEEPING + RECOVERY} for s in stages],
    }


def recovery_changes(saved: dict, recipe: RecipeConfig) -> dict:
    """{stage: {setting: [saved, now]}} for the recovery settings a resume changed."""
    out = {}
    for then, now in zip(saved["stages"], comparable(recipe)["stages"]):
        diff = {k: [then.get(k), now.get(k)] for k in RECOVERY if k in then and then.get(k) != now.get(k)}
        if diff:
            out[now["name"]] = diff
    return out


def choose_checkpoint(out_dir: Path, resume: bool, info: DistInfo) -> tuple[Path | None, dict | None]:
    """Rank 0 picks the newest intact checkpoint (moving damaged ones aside) and every rank resumes from it."""
    found = None
    if info.is_main:
        try:
            if ckpt.latest_checkpoint(out_dir) is not None and not resume:
                raise ConfigError(
                    f"{out_dir} already holds checkpoints of a run: pass resume (--resume) to continue it, "
                    "or choose a new output directory"
                )
            found = ("ok", *latest_intact(out_dir)) if resume else ("ok", None, None)
        except ConfigError as err:
            found = ("error", str(err), None)
    found = broadcast_object(found, info)
    if found[0] == "error":
        raise ConfigError(found[1])
    return found[1], found[2]


def folder_lock(out_dir: Path, info: DistInfo):
    """Rank 0 holds the folder's lock for the whole run; if it cannot, every rank raises the same error."""
    if not info.active:
        return output_lock(out_dir)
    stack = contextlib.ExitStack()
    error = None
    if info.is_main:
        try:
            stack.enter_context(output_lock(out_dir))
        except ConfigError as err:
            error = str(err)
    error = broadcast_object(error, info)
    if error is not None:
        raise ConfigError(error)
    return stack
