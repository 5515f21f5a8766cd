"""The image folder given with `--images`, indexed once per dual encoder: every image under it embedded, embeddings
cached on disk by file content and model fingerprint, so a restart (or a second model) embeds only what is new.

Cache layout: `<cache_dir>/<model fingerprint>.npz` with `keys` (sha256 of each image file's bytes) and `vectors`
[N, E], read without pickle and replaced atomically. Files that cannot be read as images (or are too large) are
skipped and listed with the reason. Captions, when the folder has a `captions.jsonl` (the shapes world's
{"image": relative path, "text": ...} lines, as `modalign data shapes` writes), pair images with texts for the gap.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import sha256_file, write_atomic
from .safety import IMAGE_SUFFIXES, MAX_LABEL_CHARS, Refused, open_untrusted_image

MAX_IMAGES = 20_000


@dataclass
class ImageIndex:
    root: Path
    names: list[str]  # paths relative to root, sorted
    vectors: np.ndarray  # [N, E], L2-normalised rows
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    embedded: int = 0  # how many were computed now rather than read from the cache

    def path(self, i: int) -> Path:
        return self.root / self.names[i]


def list_images(root: Path, max_images: int = MAX_IMAGES) -> list[str]:
    """Image files under `root` (recursively, by suffix, hidden folders left out), relative and sorted; files whose
    real location is outside `root` (symlinks) are left out."""
    root = root.resolve()
    names = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        real = p.resolve()
        if p.is_file() and root in real.parents:
            names.append(rel.as_posix())
        if len(names) >= max_images:
            break
    return names


class EmbeddingCache:
    """sha256 of an image file -> its embedding under one model, in one .npz file per model fingerprint."""

    def __init__(self, cache_dir: Path, model_fingerprint: str):
        self.path = Path(cache_dir) / f"{model_fingerprint}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    self.vectors = dict(zip(z["keys"].tolist(), z["vectors"]))
            except (OSError, ValueError, KeyError):
                self.vectors = {}  # a damaged cache is rebuilt, never trusted

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.vectors)
        buf = io.BytesIO()
        vecs = np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        np.savez(buf, keys=np.array(keys, dtype="U64"), vectors=vecs)
        write_atomic(self.path, buf.getvalue())


def build_index(
    model,
    model_fingerprint: str,
    root: Path,
    cache_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 16,
    max_images: int = MAX_IMAGES,
) -> ImageIndex:
    """Embed every image under `root` with `model.embed_images`, reading and filling the cache; `progress(done,
    total)` is called as images are done."""
    root = Path(root).resolve()
    names = list_images(root, max_images)
    cache = EmbeddingCache(cache_dir, model_fingerprint)
    keys = {n: sha256_file(root / n) for n in names}
    todo = [n for n in names if keys[n] not in cache.vectors]
    skipped: list[tuple[str, str]] = []
    done = len(names) - len(todo)
    if progress:
        progress(done, len(names))
    for lo in range(0, len(todo), batch_size):
        batch, images = [], []
        for n in todo[lo : lo + batch_size]:
            try:
                images.append(open_untrusted_image(root / n))
                batch.append(n)
            except Refused as err:
                skipped.append((n, str(err)))
        if images:
            vecs = model.embed_images(images).detach().float().cpu().numpy()  # [b, E]
            for n, v in zip(batch, vecs):
                cache.vectors[keys[n]] = v
        done += len(todo[lo : lo + batch_size])
        if progress:
            progress(done, len(names))
    if todo:
        cache.save()
    bad = {n for n, _ in skipped}
    kept = [n for n in names if n not in bad]
    dim = next(iter(cache.vectors.values())).shape[0] if cache.vectors else 0
    vectors = np.stack([cache.vectors[keys[n]] for n in kept]) if kept else np.zeros((0, dim), np.float32)
    return ImageIndex(root, kept, vectors.astype(np.float32), skipped, embedded=len(todo) - len(skipped))


def folder_captions(root: Path, max_lines: int = MAX_IMAGES) -> dict[str, str]:
    """{relative image path: caption} from `root/captions.jsonl` (lines of {"image", "text"}); empty without one.
    Lines that do not parse, or name no image of the folder, are ignored."""
    path = Path(root) / "captions.jsonl"
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    with open(path, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            if i >= max_lines:
                break
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("image"), str) and isinstance(rec.get("text"), str):
                out[Path(rec["image"]).as_posix()] = rec["text"][:MAX_LABEL_CHARS]
    return out


class FolderIndex:
    """The `--images` folder and its per-model indexes, each built once (a lock keeps two builds from racing)."""

    def __init__(self, root: str | Path | None, cache_dir: str | Path):
        self.root = Path(root).resolve() if root else None
        self.cache_dir = Path(cache_dir)
        self._built: dict[str, ImageIndex] = {}
        self._lock = threading.Lock()

    def get(self, served, progress: Callable[[int, int], None] | None = None) -> ImageIndex:
        if self.root is None:
            raise Refused("No image folder was given: start the demo with --images DIR to search one")
        with self._lock:
            if served.label not in self._built:
                self._built[served.label] = build_index(
                    served.model, served.fingerprint, self.root, self.cache_dir, progress
                )
            return self._built[served.label]

    def captions(self) -> dict[str, str]:
        return folder_captions(self.root) if self.root else {}
