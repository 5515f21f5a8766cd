"""Shared plumbing for evaluation suites: batching with progress, embedding, pair scoring, settings, thumbnails.

Suites talk to models only through docs/INTERFACES.md: a dual encoder has `embed_images` / `embed_texts`
(normalised) and `logit_scale`; a vision-language model has `generate` and `score`. Dual encoders score an
(image, text) pair by cosine, generative models by `score` (log p(text | image, prompt)).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ...data.records import BadRecord
from ...data.sources import file_fingerprints
from ...registry import ConfigError

CHUNK = 512  # items held in memory at once by the suites that stream (vqa, pope, multiple_choice)


def is_dual(model) -> bool:
    return hasattr(model, "embed_images") and hasattr(model, "embed_texts")


def is_generative(model) -> bool:
    return hasattr(model, "generate") and hasattr(model, "score")


def require(model, kind: str, suite: str) -> None:
    """kind "dual", "generative" (generate and score) or "generate" (only generations are read: a tool route too)."""
    if kind == "generate":
        ok, need = hasattr(model, "generate"), "a model that generates answers (generate)"
    elif kind == "dual":
        ok, need = is_dual(model), "a dual encoder (embed_images/embed_texts)"
    else:
        ok, need = is_generative(model), "a generative model (generate/score)"
    if not ok:
        raise ConfigError(f"suite {suite!r} needs {need}; got {type(model).__name__}")


def model_fingerprint(model) -> str:
    """sha256 (first 16 hex) over the sorted state dict, so a result names the exact weights it measured."""
    h = hashlib.sha256(type(model).__name__.encode())
    if isinstance(model, torch.nn.Module):
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class Rows(list):
    """The items a suite measures, and the records it left out: `skipped` [{"index", "error"}] found bad while
    loading, `skipped_at_read` those the dataset dropped when it read its manifest (`dataset.skipped`)."""

    def __init__(self, rows=(), skipped=(), skipped_at_read: int = 0):
        super().__init__(rows)
        self.skipped = list(skipped)
        self.skipped_at_read = skipped_at_read
        self.streamed = 0  # items that went by in `item_chunks` without being kept here

    def report(self) -> dict:
        """What a result's settings say about the items measured."""
        return {
            "n_evaluated": len(self) + self.streamed,
            "skipped": len(self.skipped) + self.skipped_at_read,
            "skipped_records": self.skipped[:50],
        }


def items(dataset, limit: int | None = None, desc: str = "eval", progress: bool = True) -> Rows:
    """Materialise the first `limit` records with a progress bar (suites need several passes over them).

    Each record is read exactly (`dataset.load_record(i)` where the dataset has it), never replaced by its
    neighbour as training does, so nothing counts twice. A bad record (BadRecord) raises, or with a dataset built
    with skip_bad is left out, warned about and counted in `Rows.skipped`."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise ConfigError(f"{desc}: the dataset is empty; check the --data parameters")
    rows = reading(dataset)
    for i in tqdm(range(n), desc=f"{desc}: load", disable=not progress, leave=False):
        _read_one(dataset, i, rows, desc)
    if not rows:
        raise ConfigError(f"{desc}: all {n} records were bad and skipped; see the warnings")
    return rows


def reading(dataset) -> Rows:
    """An empty `Rows` for `dataset`, counting what the dataset skipped when it read its manifest."""
    return Rows(skipped_at_read=int(getattr(dataset, "skipped", 0) or 0))


def _read_one(dataset, i: int, rows: Rows, desc: str) -> None:
    exact = getattr(dataset, "load_record", None)
    try:
        rows.append(exact(i) if exact is not None else dataset[i])
    except BadRecord as err:
        if not getattr(dataset, "skip_bad", False):
            raise
        rows.skipped.append({"index": i, "error": str(err)})
        warnings.warn(f"{desc}: skipped bad record {i}: {err}", stacklevel=3)


def item_chunks(
    dataset, limit: int | None = None, desc: str = "eval", size: int = CHUNK, tally: Rows | None = None
) -> Iterator[list[dict]]:
    """The first `limit` items, `size` at a time, so a suite never holds every decoded image of a large set. Read
    as `items` reads them; the records left out are added to `tally` (a `reading(dataset)`) for the settings."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if n == 0:
        raise ConfigError(f"{desc}: the dataset is empty; check the --data parameters")
    tally = tally if tally is not None else reading(dataset)
    kept = 0
    for lo in range(0, n, size):
        chunk = reading(dataset)
        for i in range(lo, min(n, lo + size)):
            _read_one(dataset, i, chunk, desc)
        tally.skipped += chunk.skipped
        tally.streamed += len(chunk)
        kept += len(chunk)
        if chunk:
            yield list(chunk)
    if not kept:
        raise ConfigError(f"{desc}: all {n} records were bad and skipped; see the warnings")


def without_images(rows: list[dict], keep: int) -> list[dict]:
    """Shallow copies of rows with their pixels (and clips, videos) dropped, except the first `keep` (the report
    gallery's)."""
    heavy = ("image", "images", "audio", "audios", "video", "videos", "question_audio")
    return [r if i < keep else {k: v for k, v in r.items() if k not in heavy} for i, r in enumerate(rows)]


def batches(seq: list, size: int, desc: str, progress: bool = True) -> Iterator[list]:
    if size <= 0:
        raise ConfigError(f"batch_size must be positive, got {size}")
    for i in tqdm(range(0, len(seq), size), desc=desc, disable=not progress, leave=False):
        yield seq[i : i + size]


def _to_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float64)


@torch.no_grad()
def embed_images(model, images: list, batch_size: int, progress: bool = True) -> np.ndarray:
    out = [_to_numpy(model.embed_images(b)) for b in batches(images, batch_size, "embed images", progress)]
    return np.concatenate(out, 0)  # [N, E]


@torch.no_grad()
def embed_audio(model, clips: list, batch_size: int, progress: bool = True) -> np.ndarray:
    if not hasattr(model, "embed_audio"):
        raise ConfigError(f"{type(model).__name__} embeds no audio: build an audio-text model (DualEncoder(audio=...))")
    out = [_to_numpy(model.embed_audio(b)) for b in batches(clips, batch_size, "embed audio", progress)]
    return np.concatenate(out, 0)  # [N, E]


def embed_media(model, rows: list[dict], batch_size: int, progress: bool = True) -> np.ndarray:
    """Embeddings of each row's image, or of its audio clip when the rows are audio items."""
    if rows and "audio" in rows[0] and "image" not in rows[0]:
        return embed_audio(model, [r["audio"] for r in rows], batch_size, progress)
    return embed_images(model, [r["image"] for r in rows], batch_size, progress)


@torch.no_grad()
def embed_texts(model, texts: list[str], batch_size: int, progress: bool = True) -> np.ndarray:
    out = [_to_numpy(model.embed_texts(b)) for b in batches(texts, batch_size, "embed texts", progress)]
    return np.concatenate(out, 0)  # [N, E]


def _distinct(values: list, key) -> tuple[np.ndarray, list]:
    """(index of each value in the distinct list, the distinct values in first-seen order)."""
    seen: dict = {}
    index = [seen.setdefault(key(v), len(seen)) for v in values]
    firsts: dict = {}
    for v in values:
        firsts.setdefault(key(v), v)
    return np.asarray(index, dtype=np.int64), list(firsts.values())


@torch.no_grad()
def pair_scores(
    model, images: list, texts: list[str], prompt: str | list[str], batch_size: int, progress: bool = True
) -> np.ndarray:
    """One score per (image_i, text_i): cosine for dual encoders, log p(text | image, prompt) for generative.

    `prompt` is one string for every pair or one per pair (ignored by dual encoders).
    """
    prompts = [prompt] * len(images) if isinstance(prompt, str) else list(prompt)
    if not len(images) == len(texts) == len(prompts):
        raise ValueError(f"pair_scores needs one text per image, got {len(images)} and {len(texts)}")
    if is_dual(model):
        # probes pair one image with many texts: embed each distinct image (and text) once, then index
        img_index, unique_images = _distinct(images, key=id)
        txt_index, unique_texts = _distinct(texts, key=lambda t: t)
        x = embed_images(model, unique_images, batch_size, progress)[img_index]  # [N, E]
        y = embed_texts(model, unique_texts, batch_size, progress)[txt_index]  # [N, E]
        return (x * y).sum(1)  # [N], embeddings are normalised per the interface
    if not is_generative(model):
        raise ConfigError(f"{type(model).__name__} has neither embed_images/embed_texts nor score")
    triples = list(zip(images, texts, prompts))
    out = []
    for b in batches(triples, batch_size, "score", progress):
        out.append(_to_numpy(model.score([t[0] for t in b], [t[1] for t in b], [t[2] for t in b])).reshape(-1))
    return np.concatenate(out, 0)


def group_by_content(images: list) -> list[list[int]]:
    """Indices of the images grouped by pixel content (`encoders.cache.image_key`), groups in first-seen order;
    one object appearing several times is hashed once."""
    from ...encoders.cache import image_key

    keys: dict[int, str] = {}
    groups: dict[str, list[int]] = {}
    for i, im in enumerate(images):
        if id(im) not in keys:
            keys[id(im)] = image_key(im)
        groups.setdefault(keys[id(im)], []).append(i)
    return list(groups.values())


def progress_bar(total: int | None, desc: str, progress: bool = True):
    """A bar counting questions (its rate reads questions per second)."""
    return tqdm(total=total, desc=desc, unit="q", disable=not progress, leave=False)


@torch.no_grad()
def generate(
    model,
    images: list,
    prompts: list[str],
    batch_size: int,
    max_new_tokens: int,
    progress: bool = True,
    repetition_penalty: float = 1.0,
    num_beams: int = 1,
    group_by_image: bool = True,
    bar=None,
    audio: list | None = None,
    video: list | None = None,
) -> list[str]:
    """Greedy answers, or beam search with `num_beams` > 1 (transformers' semantics); `repetition_penalty` != 1 is
    passed on (transformers' meaning: > 1 discourages tokens already in the prompt or the answer). `audio` / `video`:
    one clip / video per row (spoken questions, sound or video QA); `images` may then be None.

    With greedy decoding and a model that has `answer_many` (models/vlm_inference.py), the questions about one
    image (same pixels, whatever the item ids) are answered together: the image and the prompt prefix are encoded
    once and their KV cache shared, giving the answers `generate` gives. Lone questions are batched as before.
    `bar` (from `progress_bar`) is advanced instead of a bar of this call's own.
    """
    from ...models.beam_search import check_beam_args
    from ...models.chat_template import IMAGE_TOKEN
    from ...models.vlm_inference import check_repetition_penalty

    try:  # the model's own checks, up front and as configuration errors
        check_repetition_penalty(repetition_penalty)
        check_beam_args(num_beams, 1.0, False)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if batch_size <= 0:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    media = {k: v for k, v in (("audio", audio), ("video", video)) if v is not None}
    for name, column in [("image", images), *media.items()]:
        if column is not None and len(column) != len(prompts):
            raise ValueError(f"generate needs one prompt per {name}, got {len(column)} and {len(prompts)}")
    penalty = {} if repetition_penalty == 1.0 else {"repetition_penalty": float(repetition_penalty)}
    extra = dict(penalty, **({"num_beams": num_beams} if num_beams != 1 else {}))
    own_bar = bar is None
    bar = progress_bar(len(prompts), "generate", progress) if own_bar else bar
    out: list = [None] * len(prompts)
    lone = list(range(len(prompts)))
    # answer_many puts the image first in the shared prefix: prompts placing it themselves go the plain way, and so
    # do rows with their own clip or video
    groupable = (
        num_beams == 1 and hasattr(model, "answer_many") and not any(p is None or IMAGE_TOKEN in p for p in prompts)
    )
    if group_by_image and groupable and images is not None and not media:
        groups = group_by_content(images)
        lone = [g[0] for g in groups if len(g) == 1]
        for g in (g for g in groups if len(g) > 1):
            answers = model.answer_many(
                images[g[0]], [prompts[i] for i in g], max_new_tokens=max_new_tokens, batch_size=batch_size, **penalty
            )
            for i, a in zip(g, answers):
                out[i] = a
            bar.update(len(g))
    for lo in range(0, len(lone), batch_size):
        idx = lone[lo : lo + batch_size]
        rows = {k: [v[i] for i in idx] for k, v in media.items()}
        asked = [prompts[i] for i in idx]
        answers = model.generate(
            None if images is None else [images[i] for i in idx],
            None if all(q is None for q in asked) else asked,  # None: the caption objective's format
            max_new_tokens=max_new_tokens,
            do_sample=False,
            **rows,
            **extra,
        )
        for i, a in zip(idx, answers):
            out[i] = a
        bar.update(len(idx))
    if own_bar:
        bar.close()
    return out


def row_media(rows: list[dict]) -> dict:
    """What each row is about besides its image: {"audio": [...]} / {"video": [...]} when every row has one."""
    return {k: [r[k] for r in rows] for k in ("audio", "video") if rows and all(k in r for r in rows)}


def row_images(rows: list[dict]) -> list | None:
    return [r["image"] for r in rows] if rows and all(r.get("image") is not None for r in rows) else None


def decoding(num_beams: int) -> str:
    """How answers were decoded, for a result's settings."""
    return "greedy" if num_beams == 1 else f"beam search ({num_beams} beams)"


def logit_scale_of(model, override: float | None = None) -> float:
    """The multiplicative temperature s of logits = s * cos (DualEncoder.logit_scale is already exp(t'), <= 100)."""
    if override is not None:
        return float(override)
    s = getattr(model, "logit_scale", None)
    if s is None:
        return 100.0  # CLIP's trained value: the shift experiment's usual reference
    return float(s.detach().item()) if isinstance(s, torch.Tensor) else float(s)


def settings(model, dataset, seed: int | None = None, rows: Rows | None = None, **kw: Any) -> dict:
    """What a result was measured with: model hash, dataset, its files (path, size, sha256), seed, the suite's own
    knobs, and (given the `rows` measured) how many items were evaluated and which records were skipped."""
    out = {
        "model_hash": model_fingerprint(model),
        "model_class": type(model).__name__,
        "dataset": type(dataset).__name__,
        "split": getattr(dataset, "split", None),
        "dataset_size": len(dataset),
        "seed": seed,
    }
    if getattr(dataset, "source_files", None):
        out["files"] = file_fingerprints(dataset.source_files)
    if getattr(dataset, "root", None) is not None:
        out["image_root"] = str(dataset.root)
    if isinstance(rows, Rows):
        out.update(rows.report())
    elif getattr(dataset, "skipped", 0):
        out["skipped"] = dataset.skipped
    return {**out, **kw}


def save_thumbnails(
    images: Iterable, names: list[str], out_dir: str | Path | None, sub: str, size: int = 128
) -> list[str | None]:
    """Write small PNGs for the report gallery; returns paths relative to out_dir (None when out_dir is None)."""
    if out_dir is None:
        return [None] * len(names)
    folder = Path(out_dir) / "gallery" / sub
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for img, name in zip(images, names):
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(name))
        thumb = img.convert("RGB").copy()
        thumb.thumbnail((size, size))
        thumb.save(folder / f"{safe}.png")
        paths.append(f"gallery/{sub}/{safe}.png")
    return paths


def param_from(params_value, dataset, attr: str, default=None):
    """A suite parameter, else the dataset attribute of the same name, else the default."""
    if params_value is not None:
        return params_value
    return getattr(dataset, attr, default)
