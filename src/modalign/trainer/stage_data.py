"""A stage's data: build its dataset from the recipe, check it up front, and load + collate micro-batches.

Loading is in-process and by index (the resumable sampler decides the indices), so the data position of a run is
just the sampler's (epoch, index). A record that fails to load stops the run with its index and dataset named;
datasets that can skip bad records do so themselves under `skip_bad` and report `skipped`.
"""

from __future__ import annotations

import inspect
import warnings
from itertools import chain

from ..config import RecipeConfig, StageConfig, is_spec
from ..registry import ConfigError, build


def _datasets_registry() -> dict:
    from .. import data

    return data.DATASETS


def data_name(data) -> str:
    """How errors name a stage's data: the registry name, or the class of a dataset object."""
    return data.name if is_spec(data) else type(data).__name__


def build_stage_dataset(stage: StageConfig, registry: dict | None = None):
    if not is_spec(stage.data):  # a Dataset object handed over in Python
        if len(stage.data) == 0:
            raise ConfigError(f"stage {stage.name!r}: the dataset {data_name(stage.data)} is empty")
        return stage.data
    registry = _datasets_registry() if registry is None else registry
    params = stage.data.params()
    builder = registry.get(stage.data.name)
    if builder is not None and "skip_bad" not in params:
        sig = inspect.signature(builder)
        takes = "skip_bad" in sig.parameters or any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        if takes:
            params["skip_bad"] = stage.skip_bad
        elif stage.skip_bad:
            raise ConfigError(
                f"stage {stage.name!r}: skip_bad is set but dataset {stage.data.name!r} cannot skip bad records "
                "(it has no skip_bad parameter): remove skip_bad or fix the data"
            )
    try:
        dataset = build(registry, "dataset", stage.data.name, **params)
    except ValueError as err:  # a data option out of range: say which stage, before anything is trained
        raise ConfigError(f"stage {stage.name!r}: dataset {stage.data.name!r}: {err}") from err
    try:
        size = len(dataset)
    except TypeError:
        raise ConfigError(
            f"stage {stage.name!r}: dataset {stage.data.name!r} has no length; the trainer needs a map-style dataset"
        ) from None
    if size == 0:
        raise ConfigError(
            f"stage {stage.name!r}: dataset {stage.data.name!r} with {params} is empty; check its "
            "path / split / class filters"
        )
    return dataset


def check_stage(stage: StageConfig, world_size: int, dataset_size: int) -> None:
    """Problems that would otherwise surface mid-run, raised before any weight is loaded."""
    unit = stage.grad_accum * world_size
    if stage.batch_size % unit:
        raise ConfigError(
            f"stage {stage.name!r}: batch_size {stage.batch_size} (the global batch) must be divisible by "
            f"grad_accum x processes = {stage.grad_accum} x {world_size} = {unit}; e.g. batch_size: "
            f"{max(unit, stage.batch_size // unit * unit)}"
        )
    if stage.objective in ("contrastive", "qformer") and stage.grad_accum > 1:
        warnings.warn(
            f"stage {stage.name!r}: grad_accum={stage.grad_accum} with a contrastive objective averages losses of "
            f"micro-batches of {stage.batch_size // stage.grad_accum} (fewer negatives), which is not the loss of "
            "one global batch",
            stacklevel=2,
        )
    if dataset_size < stage.batch_size:
        warnings.warn(
            f"stage {stage.name!r}: the dataset ({dataset_size}) is smaller than one batch "
            f"({stage.batch_size}); batches will repeat samples",
            stacklevel=2,
        )


def text_corpus(recipe: RecipeConfig, datasets: list):
    """Every stage dataset's `texts()` chained (lazily), for models that train a tokenizer; None if none has any."""
    sources = [ds for ds in datasets if hasattr(ds, "texts")]
    if not sources:
        return None
    return chain.from_iterable(ds.texts() for ds in sources)


def load_samples(dataset, indices: list[int], stage: StageConfig) -> list[dict]:
    samples = []
    for i in indices:
        try:
            samples.append(dataset[i])
        except Exception as err:  # the record, not the trainer, is at fault: say which one
            raise RuntimeError(
                f"stage {stage.name!r}: record {i} of dataset {data_name(stage.data)!r} failed to load "
                f"({type(err).__name__}: {err}); fix or remove it, or set `skip_bad: true` if the dataset supports it"
            ) from err
    return samples


def stage_plugins(model, stage: StageConfig) -> list:
    """Build the stage's batch transforms and hand its auxiliary losses to the model; refuse what does not fit."""
    from ..models.aux_losses import AUX_LOSSES
    from .transforms import BATCH_TRANSFORMS

    transforms = []
    for spec in stage.transforms:
        t = build(BATCH_TRANSFORMS, "batch transform", spec.name, **spec.params())
        if stage.objective not in t.objectives:
            raise ConfigError(
                f"stage {stage.name!r}: transform {spec.name!r} applies to objectives {', '.join(t.objectives)}, "
                f"not {stage.objective!r}; remove it from this stage"
            )
        t.setup(model)
        transforms.append(t)
    aux = [build(AUX_LOSSES, "auxiliary loss", spec.name, **spec.params()) for spec in stage.aux_losses]
    if aux and not hasattr(model, "set_aux_losses"):
        raise ConfigError(f"stage {stage.name!r}: {type(model).__name__} takes no aux_losses; remove them")
    if hasattr(model, "set_aux_losses"):
        model.set_aux_losses(aux)
    return transforms


def collate_named(model, samples: list[dict], indices: list[int], stage: StageConfig) -> dict:
    """`model.collate(samples)`; a sample it cannot take (a caption with an image marker, a conversation the
    tokenizer cannot render ...) is found by collating each alone, and the error names its index and id."""
    try:
        return model.collate(samples)
    except ConfigError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        culprit = None
        for i, sample in zip(indices, samples):
            try:
                model.collate([sample])
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as one:
                culprit, err = (i, sample), one
                break
        who = f"record {culprit[0]} (id {culprit[1].get('id')!r})" if culprit else f"the records {indices} together"
        raise RuntimeError(
            f"stage {stage.name!r}: {who} of dataset {data_name(stage.data)!r} cannot be batched "
            f"({type(err).__name__}: {err}); fix or remove it"
        ) from err


def micro_batches(
    model, dataset, index_groups: list[list[int]], stage: StageConfig, transforms: list | None = None
) -> list[tuple[dict, int]]:
    """Load and collate each group of indices, then apply the stage's transforms (see `stage_plugins`)."""
    batches = [(collate_named(model, load_samples(dataset, idx, stage), idx, stage), len(idx)) for idx in index_groups]
    for t in transforms or []:  # random draws come from the global RNG, which checkpoints save (exact resume)
        batches = [(t(b), n) for b, n in batches]
    return batches
