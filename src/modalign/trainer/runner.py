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
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..config import TOWER_NAMES, RecipeConfig, StageConfig
from ..encoders.cache import FeatureCache
from ..files import write_atomic
from ..registry import ConfigError
from . import checkpoint as ckpt
from . import fsdp
from .distributed import DistInfo, barrier, broadcast_object, has_unused_trainable, init_distributed, shutdown, wrap
from .freeze import apply_freeze_plan, prepare_stage, set_activation_checkpointing, set_train_modes
from .guard import BadSteps, TrainingDiverged, check_finite, optimizer_tensors
from .init_from import check_init_from
from .logs import RunLogger
from .optim import build_optimizer, lr_at
from .resume import BOOKKEEPING, RECOVERY, choose_checkpoint, comparable, folder_lock, recovery_changes, training_part
from .sampler import ResumableSampler, shard
from .stage_data import build_stage_dataset, check_stage, micro_batches, stage_plugins, text_corpus
from .step import resolve_precision, train_step

Evaluate = Callable[[torch.nn.Module, StageConfig, int], dict]


def _seed_all(*parts: int) -> None:
    a, b = np.random.SeedSequence(list(parts)).generate_state(2)
    torch.manual_seed(int(a) << 32 | int(b))
    np.random.seed(int(a))
    random.seed(int(b))


_clock = time.monotonic  # tests replace it to make the checkpoint timer deterministic


def _evaluate(evaluate: Evaluate, model, stage: StageConfig, global_step: int, info: DistInfo, log: RunLogger):
    if info.is_main:
        model.eval()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):  # evaluation never perturbs training
            results = evaluate(model, stage, global_step) or {}
        set_train_modes(model)
        numeric = {f"eval/{k}": float(v) for k, v in results.items() if isinstance(v, (int, float))}
        log.scalars(global_step, numeric, stage=stage.name, event="eval", results=results)
    barrier(info)


def _count_bad_step(bad: BadSteps, logged: dict, batches, stage, step: int, global_step: int, out_dir, log) -> None:
    """Count a skipped step in the log; at the stage's limit log why the run stops and raise TrainingDiverged."""
    ids = [i for batch, _ in batches for i in batch.get("ids", [])]
    newest = ckpt.latest_checkpoint(out_dir)
    hint = (
        f"The newest checkpoint, {newest}, holds finite weights: fix the cause and resume from it."
        if newest is not None
        else "No checkpoint was written yet: fix the cause and train again."
    )
    try:
        skipped = bad.record(logged, stage=stage.name, step=step, global_step=global_step, ids=ids, resume_hint=hint)
    except TrainingDiverged as err:
        log.event("diverged", global_step, stage=stage.name, step=step, message=str(err))
        raise
    if skipped:
        log.event(
            "bad_step",
            global_step,
            stage=stage.name,
            step=step,
            loss=logged["loss"],
            grad_norm=logged["grad_norm"],
            in_a_row=bad.in_a_row,
            ids=[str(i) for i in ids[:16]],
        )


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
    on_step: Callable[[StageConfig, int, int, dict], None] | None = None,
) -> dict:
    """Train every stage of `recipe` into `out_dir`; returns a summary (see docs/INTERFACES.md, Trainer).

    evaluate: `(model, stage, global_step) -> dict`, called on rank 0 every `eval_every` steps of a stage.
    stop_after_steps: stop (without saving) once this many global steps are done, as a kill would.
    model_builder: `(ModelConfig, text_corpus=...) -> AlignmentModel`, default `modalign.models.build_model`.
    datasets: name -> builder registry, default `modalign.data.DATASETS`.
    on_step: `(stage, step, global_step, logged)` after every optimizer step (logged: that step's loss, lr, ...), in
    the training thread: e.g. to change the thread count when a core frees up, or to feed one's own dashboard.
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
            on_step,
        )
    finally:
        shutdown(info)


def _run(recipe, out_dir, resume, evaluate, progress, stop_after_steps, model_builder, registry, keep, info, on_step):
    # ---- everything that can be checked before a weight is loaded ----
    dsets = [build_stage_dataset(stage, registry) for stage in recipe.stages]
    for stage, ds in zip(recipe.stages, dsets):
        check_stage(stage, info.world_size, len(ds))
    init_dir = check_init_from(recipe)
    with folder_lock(out_dir, info):
        return _train(
            recipe,
            out_dir,
            resume,
            evaluate,
            progress,
            stop_after_steps,
            model_builder,
            keep,
            info,
            dsets,
            init_dir,
            on_step,
        )


def _train(
    recipe, out_dir, resume, evaluate, progress, stop_after_steps, model_builder, keep, info, dsets, init_dir, on_step
):
    latest, state = choose_checkpoint(out_dir, resume, info)
    if state is not None and training_part(state["recipe"]) != training_part(comparable(recipe)):
        raise ConfigError(
            f"{latest} was written by a different recipe (model, seed or stages changed); resume "
            "with the same recipe or choose a new output directory (a resume may change only "
            f"{', '.join(RECOVERY + BOOKKEEPING)})"
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
        ckpt.load_weights(latest, model, state)
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
    changed = recovery_changes(state["recipe"], recipe) if state is not None else {}
    if changed:  # the run now deviates from an uninterrupted one, by the user's choice: say so where it is read
        log.event("resume_changed", global_step, changes=changed, checkpoint=str(latest))
        warnings.warn(f"resuming {latest} with changed settings {changed}", stacklevel=3)

    sharded = recipe.strategy == "fsdp" and info.active  # one process: fsdp has nothing to shard
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
            set_activation_checkpointing(model, stage.activation_checkpointing)
            # fsdp trains a sharded copy; `model` stays the whole one that saves, evaluation and the next stage see
            train_model = fsdp.shard_copy(model) if sharded else model
            train_model.enable_feature_cache(cache)
            optimizer = build_optimizer(train_model, stage.lr, stage.weight_decay)
            sampler = ResumableSampler(len(ds), seed=recipe.seed, stream=s)
            step = start_step if mid else 0
            if mid:
                ckpt.load_optimizer(latest, optimizer, fsdp.shard_optimizer_state if sharded else None)
                sampler.load_state_dict(state["sampler"])
                ckpt.load_rng(latest, info.rank, int(state.get("world_size", 1)))
            transforms = stage_plugins(train_model, stage)
            find_unused = False
            if info.active and not sharded:
                first = shard(
                    [i % len(ds) for i in range(stage.batch_size)], info.rank, info.world_size, stage.grad_accum
                )[:1]
                probe_batch = micro_batches(model, ds, first, stage, transforms)[0][0]
                find_unused = has_unused_trainable(model, probe_batch, stage.objective, info)
            wrapped = train_model if sharded else wrap(model, info, find_unused)
            precision = resolve_precision(stage.precision)  # once per stage: "auto" asks the hardware
            log.event(
                "stage_start",
                global_step,
                stage=stage.name,
                index=s,
                resumed_at=step if mid else None,
                objective=stage.objective,
                dataset_size=len(ds),
                freeze=report.as_dict(),
                frozen_cached=frozen_towers if cache is not None else [],
                find_unused_parameters=find_unused,
                strategy=recipe.strategy if info.active else "single",
                sharded_parameters=fsdp.sharded_count(train_model) if sharded else 0,
                precision=precision,
                **({"dataset.skipped": ds.skipped} if hasattr(ds, "skipped") else {}),
            )
            log.start_bar(stage.steps, step, stage.name)
            t0, done_here, logged = time.perf_counter(), 0, {}
            last_save = _clock()
            bad = BadSteps(stage.max_bad_steps, **(state.get("bad_steps", {}) if mid else {}))
            while step < stage.steps:
                groups = shard(
                    sampler.next_global_batch(stage.batch_size), info.rank, info.world_size, stage.grad_accum
                )
                lr = lr_at(step, stage.lr, stage.steps, stage.warmup_steps, stage.schedule)
                batches = micro_batches(train_model, ds, groups, stage, transforms)
                logged = train_step(
                    wrapped,
                    optimizer,
                    batches,
                    stage.objective,
                    stage.batch_size,
                    info,
                    lr,
                    stage.max_grad_norm,
                    precision,
                )
                step, global_step, done_here = step + 1, global_step + 1, done_here + 1
                _count_bad_step(bad, logged, batches, stage, step, global_step, out_dir, log)
                logged["steps_per_s"] = done_here / (time.perf_counter() - t0)
                log.update_bar(logged["loss"], lr, logged["steps_per_s"])
                if on_step is not None:
                    on_step(stage, step, global_step, logged)
                if step % stage.log_every == 0 or step == stage.steps:
                    extra = {"dataset.skipped": ds.skipped} if hasattr(ds, "skipped") else {}
                    epoch = sampler.epoch + sampler.index / sampler.num_samples
                    log.scalars(global_step, {**logged, **extra, "epoch": epoch}, stage=stage.name, step=step)
                due = bool(stage.checkpoint_every and step % stage.checkpoint_every == 0) or step == stage.steps
                if not due and stage.checkpoint_minutes and step % stage.log_every == 0:
                    # rank 0's clock decides, so that every rank joins the same save
                    due = broadcast_object(_clock() - last_save >= 60 * stage.checkpoint_minutes, info)
                evaluate_now = evaluate is not None and stage.eval_every and step % stage.eval_every == 0
                if sharded and (due or evaluate_now or step == stage.steps):
                    fsdp.sync_back(train_model, model)  # collective: the whole model gets the trained tensors
                if evaluate_now:
                    _evaluate(evaluate, model, stage, global_step, info, log)
                if step == stage.steps:
                    check_finite(model.state_dict(), f"the model of stage {stage.name!r}")  # on every rank alike
                    if info.is_main:
                        model.save_pretrained(out_dir / "stages" / stage.name)
                if due and bad.in_a_row and step != stage.steps:
                    # the weights may already be the ones that diverged (the step before a run of bad steps did
                    # the damage): keep the newest checkpoint one from before, so a resume with a lower lr recovers
                    log.event("checkpoint_deferred", global_step, stage=stage.name, step=step, in_a_row=bad.in_a_row)
                    due = False
                if due:
                    where = f"a checkpoint at global step {global_step}"
                    opt_state = fsdp.gathered_optimizer_state(optimizer) if sharded else optimizer.state_dict()
                    check_finite(model.state_dict(), where)
                    check_finite(optimizer_tensors(opt_state), where)
                    ckpt.save_checkpoint(
                        out_dir,
                        model,
                        opt_state,
                        {
                            "stage_index": s,
                            "stage_name": stage.name,
                            "stage_step": step,
                            "stage_done": step == stage.steps,
                            "global_step": global_step,
                            "sampler": sampler.state_dict(),
                            "bad_steps": bad.state_dict(),
                            "recipe": comparable(recipe),
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
            train_model.enable_feature_cache(None)
            if hasattr(train_model, "set_aux_losses"):
                train_model.set_aux_losses([])
            set_activation_checkpointing(model, False)
            del wrapped, train_model
            summary["stages"].append(
                {
                    "name": stage.name,
                    "steps": stage.steps,
                    "loss": logged.get("loss"),
                    "trainable": report.trainable,
                    "frozen": report.frozen,
                    "cache": {"hits": cache.hits, "misses": cache.misses} if cache is not None else None,
                    "bad_steps": bad.total,
                }
            )
            log.event("stage_end", global_step, stage=stage.name, loss=logged.get("loss"), bad_steps=bad.total)
        check_finite(model.state_dict(), "the final model")
        if info.is_main:
            model.save_pretrained(out_dir / "final")
        barrier(info)
        summary.update(global_step=global_step, final_dir=str(out_dir / "final"), seconds=round(time.time() - t_run, 1))
        if info.is_main:
            write_atomic(out_dir / "summary.json", json.dumps(summary, indent=1))
        return summary
    finally:
        log.close()
