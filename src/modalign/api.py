"""The Python front door (`import modalign as ma`): load, train, evaluate, run a recipe, list what is registered.

The `modalign` command and the YAML recipes are thin layers over these functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .config import EvalConfig, RecipeConfig, StageConfig, load_recipe
from .registry import ConfigError


def load(path: str | Path, trust_code: bool = False):
    """A saved model (a `DualEncoder` or a `VisionLanguageModel`) from its directory, in eval mode.

    Files are checked against their recorded sha256, and pretrained parts saved as references are rebuilt from the
    installed packages and checked against their recorded hash. `trust_code=True` lets a model built from your own
    Python classes import them — only for models whose source you trust.

    >>> model = ma.load("runs/llava/final")
    """
    from .models import load_model

    return load_model(path, trust_code=trust_code)


def _stages(stages) -> list[StageConfig]:
    if isinstance(stages, (StageConfig, dict)):
        stages = [stages]
    out = []
    for i, s in enumerate(stages):
        if isinstance(s, StageConfig):
            out.append(s)
            continue
        if not isinstance(s, dict):
            raise ConfigError(f"stage {i} must be a modalign.Stage or a dict, got {type(s).__name__}")
        out.append(StageConfig.model_validate({"name": s.get("name", f"stage{i}"), **s}))
    return out


def train(
    model,
    stages,
    out_dir: str | Path,
    *,
    seed: int = 0,
    resume: bool = False,
    name: str | None = None,
    progress: bool = True,
    keep_checkpoints: int = 2,
    on_step=None,
) -> dict:
    """Train `model` in place through `stages` (`ma.Stage` objects or dicts), saving into `out_dir`.

    Each stage's `data` is a registered dataset spec (`{"name": "shapes", "task": "caption"}`) or any map-style
    `torch.utils.data.Dataset` whose items follow docs/INTERFACES.md. Checkpoints go to `out_dir/checkpoints/`
    (atomic, exact resume with `resume=True`), each stage's end model to `out_dir/stages/<name>/`, the last to
    `out_dir/final/`. Returns the run summary (also in `out_dir/summary.json`). `on_step(stage, step, global_step,
    logged)` is called after every optimizer step with that step's loss and learning rate.

    >>> ma.train(model, [ma.Stage(name="align", objective="caption", data=my_dataset, steps=200,
    ...                           train=["connector"])], "runs/mine")
    """
    from .trainer import run_recipe

    recipe = RecipeConfig(name=name or Path(out_dir).name, seed=seed, model=model.cfg, stages=_stages(stages))
    return run_recipe(
        recipe,
        out_dir,
        resume=resume,
        progress=progress,
        model_builder=lambda cfg, text_corpus=None: model,
        keep_checkpoints=keep_checkpoints,
        on_step=on_step,
    )


def _eval_config(suite: str | EvalConfig, data, params: dict) -> EvalConfig:
    if isinstance(suite, EvalConfig):
        return suite
    return EvalConfig(suite=suite, data=data, **params)


def evaluate(model, suite: str, data, *, out_dir: str | Path | None = None, progress: bool = True, **params) -> dict:
    """Run one evaluation suite (`modalign list suites`) on a dataset: a registered spec or a Dataset object.

    Returns `{"suite", "metrics", "settings", "samples"}`; with `out_dir` the gallery thumbnails are written there.

    >>> ma.evaluate(model, "vqa", {"name": "shapes", "task": "vqa", "split": "heldout", "n": 100})["metrics"]
    """
    from .eval.runner import run_suite

    return run_suite(model, _eval_config(suite, data, params), out_dir, progress=progress)


def dataset(name: str, **params):
    """A registered dataset by name (`modalign list datasets`), e.g. `ma.dataset("shapes", task="vqa", n=100)`."""
    from .data import DATASETS
    from .registry import build

    return build(DATASETS, "dataset", name, **params)


def run_recipe(
    recipe: str | Path | RecipeConfig,
    out_dir: str | Path | None = None,
    *,
    overrides: Iterable[str] = (),
    resume: bool = False,
    run_eval: bool = True,
    progress: bool = True,
    on_step=None,
) -> dict:
    """A recipe end to end (what `modalign train` runs): validate all of it (its `eval:` suites, their parameters
    and datasets included), train every stage, then run the suites on the final model into `out_dir/eval/`.
    Returns `{"train": summary, "eval": results or None}`. on_step: `(stage, step, global_step, logged)` after every
    training step."""
    from .data import DATASETS
    from .eval.runner import check_evals, run_suites
    from .models import load_model
    from .trainer import run_recipe as train_recipe
    from .trainer.eval_cache import prepare_for_eval
    from .trainer.lock import output_lock

    if not isinstance(recipe, RecipeConfig):
        recipe = load_recipe(recipe, list(overrides))
    out = Path(out_dir or os.path.join("runs", recipe.name))
    if recipe.eval and run_eval:
        check_evals(recipe.eval, DATASETS)  # a mistake in eval: fails now, not after the last stage
    evaluate_cb = None
    if recipe.eval and run_eval and any(s.eval_every for s in recipe.stages):
        evaluate_cb = _periodic_eval(recipe, out)
    # one writer per folder over training and the evaluation that follows (rank 0 holds it under torchrun)
    main = os.environ.get("RANK", "0") == "0"
    with output_lock(out) if main else nullcontext():
        summary = train_recipe(recipe, out, resume=resume, evaluate=evaluate_cb, progress=progress, on_step=on_step)
        results = None
        if recipe.eval and run_eval and main:  # under torchrun the other ranks are done once training is
            model = prepare_for_eval(load_model(out / "final"), recipe, out)
            results = run_suites(model, recipe.eval, out / "eval", DATASETS, progress=progress)
    return {"train": summary, "eval": results}


def _periodic_eval(recipe: RecipeConfig, out: Path):
    """The trainer's `evaluate` callback: the recipe's suites on the model as it is, into eval/<stage>-<step>/."""

    def evaluate_now(model, stage, step):
        from .data import DATASETS
        from .eval.runner import run_suites

        results = run_suites(model, recipe.eval, out / "eval" / f"{stage.name}-{step}", DATASETS, progress=False)
        return {
            f"{key}/{m}": v
            for key, r in results["suites"].items()
            for m, v in r.get("metrics", {}).items()
            if isinstance(v, (int, float))
        }

    return evaluate_now


def components(family: str | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """Every registered component by family, with its parameters and defaults (what `modalign list` prints).

    Families: vision, text, audio, video, connectors, lms, datasets, suites, objectives, aux_losses, transforms,
    tools."""
    from .catalog import catalog

    return catalog(family)
