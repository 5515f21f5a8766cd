"""Suites on a dual encoder's embeddings: retrieval, zero-shot classification, geometry, linear probe.

Each takes caption items {"id", "image", "text", "label"?} and returns {"suite", "metrics", "settings", "figures"}:
`metrics` is a flat dict of numbers (what tables and `compare` show), `figures` the raw data the report draws.
Captions of one picture are grouped by the picture's content (`encoders.cache.image_key`), never by `id`.
"""

from __future__ import annotations

import numpy as np

from ...encoders.cache import image_key
from ...registry import ConfigError, build
from .. import metrics as M
from .common import (
    batches,
    embed_images,
    embed_media,
    embed_texts,
    items,
    logit_scale_of,
    param_from,
    require,
    settings,
)


def _group_by_image(rows: list[dict]) -> tuple[list, list[str], list[int]]:
    """Unique images (grouped by content, `image_key`), all texts, and each text's image index.

    By content, not by `id`: records of different pictures that share an id (a careless manifest) would otherwise
    be merged into one image whose many captions all count as hits; the same picture under two ids is one image
    either way (no model can tell it from itself)."""
    index: dict[str, int] = {}
    images, texts, t2i = [], [], []
    for r in rows:
        key = image_key(r["image"])
        if key not in index:
            index[key] = len(images)
            images.append(r["image"])
        texts.append(r["text"])
        t2i.append(index[key])
    return images, texts, t2i


def retrieval(
    model, dataset, batch_size: int = 64, limit: int | None = None, ks=(1, 5, 10), progress: bool = True
) -> dict:
    require(model, "dual", "retrieval")
    rows = items(dataset, limit, "retrieval", progress)
    images, texts, t2i = _group_by_image(rows)
    x = embed_images(model, images, batch_size, progress)  # [I, E]
    y = embed_texts(model, texts, batch_size, progress)  # [T, E]
    metrics = M.recall_at_k(x @ y.T, t2i, ks=tuple(ks))
    return {
        "suite": "retrieval",
        "metrics": metrics,
        "settings": settings(
            model, dataset, rows=rows, ks=list(ks), n_images=len(images), n_texts=len(texts), limit=limit
        ),
        "figures": {},
    }


def _format(template: str, classname: str) -> str:
    if "{c}" in template:
        return template.replace("{c}", classname)
    if "{}" in template:
        return template.replace("{}", classname)
    raise ConfigError(f"template {template!r} has no '{{}}' or '{{c}}' slot for the class name")


def zeroshot(
    model,
    dataset,
    classnames=None,
    templates=None,
    descriptions=None,
    prompts: str = "templates",
    batch_size: int = 64,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Prompt-ensemble zero-shot classification of images, or of audio clips (items with `audio`).

    Class prompts come from `descriptions` (one list of strings per class, or {class: [...]}) or `templates`
    when given; otherwise from the dataset's `descriptions` (prompts="descriptions") or `templates` attribute,
    else "a photo of a {}.".
    """
    require(model, "dual", "zeroshot")
    if prompts not in ("templates", "descriptions"):
        raise ConfigError(f"zeroshot prompts must be 'templates' or 'descriptions', got {prompts!r}")
    classnames = param_from(classnames, dataset, "classnames")
    if not classnames:
        raise ConfigError("zeroshot needs class names: pass classnames=[...] or use a dataset with `classnames`")
    if descriptions is None and templates is None and prompts == "descriptions":
        descriptions = getattr(dataset, "descriptions", None)
        if descriptions is None:
            raise ConfigError("prompts='descriptions' but the dataset has no `descriptions`; pass descriptions=")
    if descriptions is not None:
        if isinstance(descriptions, dict):
            missing = [c for c in classnames if c not in descriptions]
            if missing:
                raise ConfigError(f"descriptions lack classes {missing}")
            descriptions = [descriptions[c] for c in classnames]
        class_prompts = [list(d) for d in descriptions]
        prompt_setting = "per-class descriptions"
    else:
        templates = list(param_from(templates, dataset, "templates", ["a photo of a {}."]))
        class_prompts = [[_format(t, c) for t in templates] for c in classnames]
        prompt_setting = templates
    if len(class_prompts) != len(classnames) or any(len(p) == 0 for p in class_prompts):
        raise ConfigError("zeroshot needs at least one prompt per class")
    flat = [p for ps in class_prompts for p in ps]
    emb = embed_texts(model, flat, batch_size, progress)  # [sum T_c, E]
    per_class, start = [], 0
    for ps in class_prompts:  # classes may have different numbers of descriptions: ensemble each separately
        per_class.append(M.class_weights(emb[None, start : start + len(ps)])[0])
        start += len(ps)
    w = np.stack(per_class)  # [C, E]
    rows = items(dataset, limit, "zeroshot", progress)
    if any("label" not in r for r in rows):
        raise ConfigError("zeroshot needs items with an integer 'label'")
    labels = np.array([r["label"] for r in rows])
    x = embed_media(model, rows, batch_size, progress)  # [N, E]: images, or audio clips (zero-shot sound classes)
    z = M.zeroshot_metrics(x @ w.T, labels)
    confusion = z.pop("confusion")
    return {
        "suite": "zeroshot",
        "metrics": z,
        "settings": settings(
            model, dataset, rows=rows, prompts=prompt_setting, classnames=list(classnames), limit=limit
        ),
        "figures": {"confusion": {"matrix": confusion, "classnames": list(classnames)}},
    }


def geometry(
    model,
    dataset,
    batch_size: int = 64,
    limit: int | None = None,
    k: int = 10,
    lambdas=None,
    logit_scale: float | None = None,
    max_points: int = 400,
    progress: bool = True,
) -> dict:
    """Modality gap (+ shift curve), alignment/uniformity, mutual kNN and CKA between paired image/text embeddings."""
    require(model, "dual", "geometry")
    rows = items(dataset, limit, "geometry", progress)
    x = embed_images(model, [r["image"] for r in rows], batch_size, progress)  # [N, E]
    y = embed_texts(model, [r["text"] for r in rows], batch_size, progress)  # [N, E]
    n = len(rows)
    if n < 3:
        raise ConfigError(f"geometry needs at least 3 pairs, got {n}")
    scale = logit_scale_of(model, logit_scale)
    lambdas = list(np.round(np.linspace(-0.5, 1.0, 16), 4)) if lambdas is None else list(lambdas)
    if 0.0 not in lambdas:
        lambdas = sorted(lambdas + [0.0])
    _, gap_norm = M.modality_gap(x, y)
    curve = M.gap_shift_curve(x, y, lambdas, scale)
    k_eff = min(k, n - 1)
    metrics = {
        "gap_norm": gap_norm,
        **M.alignment_uniformity(x, y),
        f"mutual_knn@{k_eff}": M.mutual_knn(x, y, k_eff),
        "linear_cka": M.linear_cka(x, y),
        "contrastive_loss": curve["loss"][curve["lambdas"].index(0.0)],
        "mean_cos_pos": float((M.l2_normalize(x) * M.l2_normalize(y)).sum(1).mean()),
    }
    keep = np.random.default_rng(0).permutation(n)[:max_points]  # a fixed subsample keeps the figure legible
    px, py, var = M.pca_2d(x[keep], y[keep])
    return {
        "suite": "geometry",
        "metrics": metrics,
        "settings": settings(model, dataset, rows=rows, k=k_eff, logit_scale=scale, limit=limit),
        "figures": {
            "gap_curve": curve,
            "pca": {"image": px.round(5).tolist(), "text": py.round(5).tolist(), "explained": var},
        },
    }


def _probe_features(model, images: list, features: str, batch_size: int, progress: bool) -> np.ndarray:
    if features == "embedding":
        return embed_images(model, images, batch_size, progress)  # [N, E]
    if not hasattr(model, "embed_image_features"):
        raise ConfigError("linear_probe features='tower' needs a model with embed_image_features (a DualEncoder)")
    out = [
        np.asarray(model.embed_image_features(b), dtype=np.float64)
        for b in batches(images, batch_size, "tower features", progress)
    ]
    return M.l2_normalize(np.concatenate(out, 0))  # [N, Dv]


def linear_probe(
    model,
    dataset,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    batch_size: int = 64,
    limit: int | None = None,
    features: str = "embedding",
    train_data: dict | None = None,
    progress: bool = True,
) -> dict:
    """Logistic regression on frozen, normalised image features (`embedding`: the model's image embeddings,
    `tower`: the vision tower's pooled features).

    Without `train_data`, one seeded split of `dataset` into train / val / test. With `train_data` (a dataset
    spec like the recipe's `data:`), the probe trains (and picks C on a `val_fraction` split) on that dataset and is
    tested on the whole of `dataset` -- the same images a zero-shot run scores, so the two compare directly.
    """
    require(model, "dual", "linear_probe")
    if features not in ("embedding", "tower"):
        raise ConfigError(f"linear_probe features must be 'embedding' or 'tower', got {features!r}")
    rows = items(dataset, limit, "linear_probe", progress)
    if any("label" not in r for r in rows):
        raise ConfigError("linear_probe needs items with an integer 'label'")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError("val_fraction and test_fraction must be in (0, 1) and sum to less than 1")
    x = _probe_features(model, [r["image"] for r in rows], features, batch_size, progress)
    y = np.array([r["label"] for r in rows])
    if train_data is not None:
        from ...data import DATASETS

        spec = dict(train_data)
        train_rows = items(build(DATASETS, "dataset", spec.pop("name"), **spec), None, "linear_probe", progress)
        xt = _probe_features(model, [r["image"] for r in train_rows], features, batch_size, progress)
        yt = np.array([r["label"] for r in train_rows])
        order = np.random.default_rng(seed).permutation(len(train_rows))
        n_val = int(round(val_fraction * len(train_rows)))
        va, tr = order[:n_val], order[n_val:]
        r = M.linear_probe(xt[tr], yt[tr], xt[va], yt[va], x, y, cs=tuple(cs), seed=seed)
        sizes = [len(tr), len(va), len(rows)]
        train_skipped = train_rows.report()["skipped"]
    else:
        train_skipped = None
        order = np.random.default_rng(seed).permutation(len(rows))
        n_val, n_test = int(round(val_fraction * len(rows))), int(round(test_fraction * len(rows)))
        if min(n_val, n_test, len(rows) - n_val - n_test) < 1:
            raise ConfigError(f"linear_probe: {len(rows)} items are too few for a train/val/test split")
        te, va, tr = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        r = M.linear_probe(x[tr], y[tr], x[va], y[va], x[te], y[te], cs=tuple(cs), seed=seed)
        sizes = [len(tr), len(va), len(te)]
    sweep = r.pop("val_acc_by_C")
    return {
        "suite": "linear_probe",
        "metrics": r,
        "settings": settings(
            model,
            dataset,
            rows=rows,
            seed=seed,
            split_sizes=sizes,
            cs=list(cs),
            features=features,
            train_data=train_data,
            train_skipped=train_skipped,
            limit=limit,
        ),
        "figures": {"c_sweep": sweep},
    }
