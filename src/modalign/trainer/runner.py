"""`run_recipe`: every stage of a recipe through the one loop, with checkpoints that resume exactly.

Per stage: structural changes (LoRA) -> freeze plan -> feature cache for frozen towers -> fresh AdamW -> DDP wrap ->
steps. The model carries over between stages; each stage's end model goes to `out_dir/stages/<name>/` and the last
one to `out_dir/final/`. Everything a step depends on (weights, optimizer, RNG, sampler position, step) is in the
checkpoint, and the RNG is reseeded from (seed, stage, rank) at each stage start, so an interrupted run resumed from
its latest checkpoint produces the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import TOWER_NAMES, RecipeConfig, StageConfig
from ..encoders.cache import FeatureCache
from ..registry import ConfigError
from . import checkpoint as ckpt
from .distributed import DistInfo, barrier, broadcast_object, has_unused_trainable, init_distributed, shutdown, wrap
from .freeze import apply_freeze_plan, prepare_stage, set_train_modes
from .init_from import check_init_from
from .logs import RunLogger
from .optim import build_optimizer, lr_at
from .sampler import ResumableSampler, shard
from .stage_data import build_stage_dataset, check_stage, micro_batches, stage_plugins, text_corpus
from .step import train_step

Evaluate = Callable[[torch.nn.Module, StageConfig, int], dict]


def _seed_all(*parts: int) -> None:
    a, b = np.random.SeedSequence(list(parts)).generate_state(2)
    torch.manual_seed(int(a) << 32 | int(b))
    np.random.seed(int(a))
    random.seed(int(b))


# Stage settings that decide when to log, evaluate and save, never what the weights become: a resume may change them.
_BOOKKEEPING = ("log_every", "eval_every", "checkpoint_every", "checkpoint_minutes")
_clock = time.monotonic  # tests replace it to make the checkpoint timer deterministic


def _comparable(recipe: RecipeConfig) -> dict:
    # What must not change across a resume; eval settings and descriptions may.
    return {
        "seed": recipe.seed,
        "model": recipe.model.model_dump(mode="json"),
        **({"init_from": recipe.init_from} if recipe.init_from else {}),
        "stages": [s.model_dump(mode="json") for s in recipe.stages],
    }


def _training_part(comparable: dict) -> dict:
    # Checkpoints store the whole comparable dict (older ones lack newer fields), so both sides are cut the same way.
    return {
        **comparable,
        "stages": [{k: v for k, v in s.items() if k not in _BOOKKEEPING} for s in comparable["stages"]],
    }


def _evaluate(evaluate: Evaluate, model, stage: StageConfig, global_step: int, info: DistInfo, log: RunLogger):
    if info.is_main:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # evaluation never perturbs training
            results = evaluate(model, stage, global_step) or {}
        set_train_modes(model)
        numeric = {f"eval/{k}": float(v) for k, v in results.items() if isinstance(v, (int, float))}
        log.scalars(global_step, numeric, stage=stage.name, event="eval", results=results)
    barrier(info)


def _cache_name(recipe: RecipeConfig, s: int) -> str:
    """Stages share one cache while no stage so far has trained a tower (its features are still the same function);
    after a tower trained, each stage starts its own."""
    if not any(c in st.train for st in recipe.stages[: s + 1] for c in TOWER_NAMES):
        return "frozen"
    return recipe.stages[s].name


def run_recipe(
    recipe: RecipeConfig,
    out_dir,
    resume: bool = False,
    evaluate: Evaluate | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
    *,
    model_builder: Callable | None = None,
    datasets: dict | None = None,
    keep_checkpoints: int = 2,
) -> dict:
    """Train every stage of `recipe` into `out_dir`; returns a summary (see docs/INTERFACES.md, Trainer).

    evaluate: `(model, stage, global_step) -> dict`, called on rank 0 every `eval_every` steps of a stage.
    stop_after_steps: stop (without saving) once this many global steps are done, as a kill would.
    model_builder: `(ModelConfig, text_corpus=...) -> AlignmentModel`, default `modalign.models.build_model`.
    datasets: name -> builder registry, default `modalign.data.DATASETS`.
    """
    info = init_distributed()
    try:
        return _run(
            recipe,
            Path(out_dir),
            resume,
            evaluate,
            progress,
            stop_after_steps,
            model_builder,
            datasets,
            keep_checkpoints,
            info,
        )
    finally:
        shutdown(info)


def _run(recipe, out_dir, resume, evaluate, progress, stop_after_steps, model_builder, registry, keep, info):
    # ---- everything that can be checked before a weight is loaded ----
    dsets = [build_stage_dataset(stage, registry) for stage in recipe.stages]
    for stage, ds in zip(recipe.stages, dsets):
        check_stage(stage, info.world_size, len(ds))
    init_dir = check_init_from(recipe)
    latest = ckpt.latest_checkpoint(out_dir)
    if latest is not None and not resume:
        raise ConfigError(
            f"{out_dir} already holds checkpoints of a run: pass resume (--resume) to continue it, "
            "or choose a new output directory"
        )
    state = ckpt.read_state(latest) if (resume and latest is not None) else None
    if state is not None and _training_part(state["recipe"]) != _training_part(_comparable(recipe)):
        raise ConfigError(
            f"{latest} was written by a different recipe (model, seed or stages changed); resume "
            "with the same recipe or choose a new output directory"
        )
    if state is None and info.is_main:
        shutil.rmtree(out_dir / "cache", ignore_errors=True)  # features of another run's towers
    out_dir.mkdir(parents=True, exist_ok=True)
    barrier(info)

    # ---- the model, and where the run (re)starts ----
    _seed_all(recipe.seed)
    if init_dir is not None:
        from ..models import load_model

        model = load_model(init_dir).train()  # saved in eval mode; a built model starts in train mode
    else:
        if model_builder is None:
            from ..models import build_model as model_builder
        model = model_builder(recipe.model, text_corpus=text_corpus(recipe, dsets))
    start_stage, start_step, global_step = 0, 0, 0
    if state is not None:
        start_stage, start_step, global_step = state["stage_index"], state["stage_step"], state["global_step"]
        for stage in recipe.stages[: start_stage + 1]:
            prepare_stage(model, stage)  # replay structural changes so the saved weights fit
        ckpt.load_weights(latest, model)
        if state["stage_done"]:
            start_stage, start_step = start_stage + 1, 0
    t_run = time.time()
    log = RunLogger(out_dir, info.is_main, progress, resume_step=global_step if state is not None else None)
    summary = {
        "out_dir": str(out_dir),
        "world_size": info.world_size,
        "stages": [],
        "stopped": False,
        "resumed_from": str(latest) if state is not None else None,
    }

    try:
        for s in range(start_stage, len(recipe.stages)):
            stage, ds = recipe.stages[s], dsets[s]
            mid = state is not None and s == start_stage and start_step > 0
            if not mid:  # before any structural change, so new weights (LoRA init) are the same on resume
                _seed_all(recipe.seed, s + 1, info.rank)
            prepare_stage(model, stage)
            report = apply_freeze_plan(model, stage.train)
            frozen_towers = [
                c
                for c in TOWER_NAMES
                if report.per_component.get(c, {}).get("trainable") == 0 and c in report.per_component
            ]
            cache = (
                FeatureCache(out_dir / "cache" / _cache_name(recipe, s))
                if stage.cache_frozen_features and frozen_towers
                else None
            )
            model.enable_feature_cache(cache)
            optimizer = build_optimizer(model, stage.lr, stage.weight_decay)
            sampler = ResumableSampler(len(ds), seed=recipe.seed, stream=s)
            step = start_step if mid else 0
            if mid:
                ckpt.load_optimizer(latest, optimizer)
                sampler.load_state_dict(state["sampler"])
                ckpt.load_rng(latest, info.rank)
            transforms = stage_plugins(model, stage)
            find_unused = False
            if info.active:
                first = shard(
                    [i % len(ds) for i in range(stage.batch_size)], info.rank, info.world_size, stage.grad_accum
                )[:1]
                probe_batch = micro_batches(model, ds, first, stage, transforms)[0][0]
                find_unused = has_unused_trainable(model, probe_batch, stage.objective, info)
            wrapped = wrap(model, info, find_unused)
            log.event(
                "stage_start",
                global_step,
                stage=stage.name,
                index=s,
                resumed_at=step if mid else None,
                objective=stage.objective,
                dataset_size=len(ds),
                freeze=report.as_dict(),
                frozen_cached=frozen_towers if cache else [],
                find_unused_parameters=find_unused,
                **({"dataset.skipped": ds.skipped} if hasattr(ds, "skipped") else {}),
            )
            log.start_bar(stage.steps, step, stage.name)
            t0, done_here, logged = time.perf_counter(), 0, {}
            last_save = _clock()
            while step < stage.steps:
                groups = shard(
                    sampler.next_global_batch(stage.batch_size), info.rank, info.world_size, stage.grad_accum
                )
                lr = lr_at(step, stage.lr, stage.steps, stage.warmup_steps, stage.schedule)
                logged = train_step(
                    wrapped,
                    optimizer,
                    micro_batches(model, ds, groups, stage, transforms),
                    stage.objective,
                    stage.batch_size,
                    info,
                    lr,
                    stage.max_grad_norm,
                )
                step, global_step, done_here = step + 1, global_step + 1, done_here + 1
                logged["steps_per_s"] = done_here / (time.perf_counter() - t0)
                log.update_bar(logged["loss"], lr, logged["steps_per_s"])
                if step % stage.log_every == 0 or step == stage.steps:
                    extra = {"dataset.skipped": ds.skipped} if hasattr(ds, "skipped") else {}
                    epoch = sampler.epoch + sampler.index / sampler.num_samples
                    log.scalars(global_step, {**logged, **extra, "epoch": epoch}, stage=stage.name, step=step)
                if evaluate is not None and stage.eval_every and step % stage.eval_every == 0:
                    _evaluate(evaluate, model, stage, global_step, info, log)
                if step == stage.steps and info.is_main:
                    model.save_pretrained(out_dir / "stages" / stage.name)
                due = bool(stage.checkpoint_every and step % stage.checkpoint_every == 0) or step == stage.steps
                if not due and stage.checkpoint_minutes and step % stage.log_every == 0:
                    # rank 0's clock decides, so that every rank joins the same save
                    due = broadcast_object(_clock() - last_save >= 60 * stage.checkpoint_minutes, info)
                if due:
                    ckpt.save_checkpoint(
                        out_dir,
                        model,
                        optimizer,
                        {
                            "stage_index": s,
                            "stage_name": stage.name,
                            "stage_step": step,
                            "stage_done": step == stage.steps,
                            "global_step": global_step,
                            "sampler": sampler.state_dict(),
                            "recipe": _comparable(recipe),
                            "schedule": {
                                "name": stage.schedule,
                                "lr": stage.lr,
                                "warmup_steps": stage.warmup_steps,
                                "total_steps": stage.steps,
                                "next_lr": lr_at(step, stage.lr, stage.steps, stage.warmup_steps, stage.schedule),
                            },
                        },
                        info,
                        keep,
                    )
                    log.event("checkpoint", global_step, stage=stage.name, step=step)
                    last_save = _clock()
                if stop_after_steps is not None and global_step >= stop_after_steps:
                    summary.update(stopped=True, global_step=global_step)
                    return summary
            log.close_bar()
            model.enable_feature_cache(None)
            if hasattr(model, "set_aux_losses"):
                model.set_aux_losses([])
            summary["stages"].append(
                {
                    "name": stage.name,
                    "steps": stage.steps,
                    "loss": logged.get("loss"),
                    "trainable": report.trainable,
                    "frozen": report.frozen,
                    "cache": {"hits": cache.hits, "misses": cache.misses} if cache else None,
                }
            )
            log.event("stage_end", global_step, stage=stage.name, loss=logged.get("loss"))
        if info.is_main:
            model.save_pretrained(out_dir / "final")
        barrier(info)
        summary.update(global_step=global_step, final_dir=str(out_dir / "final"), seconds=round(time.time() - t_run, 1))
        if info.is_main:
            (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary
    finally:
        log.close()
