"""Features of a frozen tower, computed once per sample and reused across steps and epochs (LiT, LLaVA stage 1).

Keys are image contents (`image_key`), audio samples (`audio_key`) or sample ids, and the text itself for text
towers. Memory-only by default; with a directory, each entry is one safetensors file, so a second run (or another
process) reuses the work. Entries
are stored as float tensors per sample: `tokens` [N, D], `pooled` [D] and, for text and audio towers, `mask` [N]
(only the real tokens are stored).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .base import EncoderOutput


def image_key(image) -> str:
    """A cache key from an image's content (mode, size, pixels): the same picture hits the same entry whether it
    comes from a training set, an eval set or another dataset whose ids happen to collide."""
    digest = hashlib.sha1(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return "img:" + digest.hexdigest()


def audio_key(audio) -> str:
    """A cache key from a waveform's samples (float32 at 16 kHz): one clip, one entry, whichever dataset holds it."""
    import numpy as np

    samples = np.ascontiguousarray(audio, dtype=np.float32)
    return "aud:" + hashlib.sha1(samples.tobytes()).hexdigest()


def _file_name(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest() + ".safetensors"


class FeatureCache:
    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._memory: dict[str, dict[str, torch.Tensor]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._memory)

    def get(self, key: str) -> dict[str, torch.Tensor] | None:
        entry = self._memory.get(key)
        if entry is None and self.directory is not None:
            path = self.directory / _file_name(key)
            if path.exists():
                entry = load_file(str(path))
                self._memory[key] = entry
        return entry

    def put(self, key: str, entry: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Store a detached copy of `entry` and return that copy."""
        entry = {k: v.detach().contiguous().clone() for k, v in entry.items()}
        self._memory[key] = entry
        if self.directory is not None:
            path = self.directory / _file_name(key)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file(entry, str(tmp))
            os.replace(tmp, path)  # atomic: a killed run never leaves a half-written entry
        return entry


def _stack(entries: list[dict[str, torch.Tensor]]) -> EncoderOutput:
    tokens = torch.stack([e["tokens"] for e in entries])
    pooled = torch.stack([e["pooled"] for e in entries])
    mask = torch.stack([e["mask"] for e in entries]) if "mask" in entries[0] else None
    return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)


def cached_forward(
    cache: FeatureCache | None,
    keys: list[str] | None,
    compute: Callable[[], EncoderOutput],
    pooled_only: bool = False,
) -> EncoderOutput:
    """Return the batch's features from the cache, computing (without grad) and storing them on a miss.

    Entries of different token lengths (text) are padded by the caller's tokenizer to the batch maximum, so the
    cache stores per-sample tensors trimmed to their mask and re-pads on the way out. `pooled_only`: only the pooled
    vector is stored and returned (tokens [B, 0, D]), for callers that read nothing else (an audio-text dual encoder:
    a clip's tokens are long); such entries live under their own keys.
    """
    if cache is None or keys is None:
        return compute()
    if pooled_only:
        keys = [k + "#pooled" for k in keys]
    entries = [cache.get(k) for k in keys]
    missing = [i for i, e in enumerate(entries) if e is None]
    cache.hits += len(keys) - len(missing)
    cache.misses += len(missing)
    if not missing:
        return _pad_stack(entries)
    with torch.no_grad():
        out = compute()
    # Write-once: a sample keeps the features of its first computation, even when it comes back in a batch with
    # misses. A tower's output can differ in the last bit with the batch around it, and a run resumed from a
    # checkpoint must see exactly the features the uninterrupted run saw.
    stored: dict[str, dict[str, torch.Tensor]] = {}  # a sample twice in one batch is stored once
    for i in missing:
        if keys[i] not in stored:
            entry = {"tokens": out.tokens[i], "pooled": out.pooled[i]}
            if pooled_only:
                entry = {"tokens": out.tokens[i, :0], "pooled": out.pooled[i]}
            elif out.mask is not None:
                n = int(out.mask[i].sum())
                entry = {"tokens": out.tokens[i, :n], "pooled": out.pooled[i], "mask": out.mask[i, :n]}
            stored[keys[i]] = cache.put(keys[i], entry)
        entries[i] = stored[keys[i]]
    return _pad_stack(entries)


def _pad_stack(entries: list[dict[str, torch.Tensor]]) -> EncoderOutput:
    if "mask" not in entries[0]:
        return _stack(entries)
    n = max(e["tokens"].shape[0] for e in entries)
    d = entries[0]["tokens"].shape[1]
    tokens = torch.zeros(len(entries), n, d, dtype=entries[0]["tokens"].dtype)
    mask = torch.zeros(len(entries), n, dtype=entries[0]["mask"].dtype)
    for i, e in enumerate(entries):
        m = e["tokens"].shape[0]
        tokens[i, :m] = e["tokens"]
        mask[i, :m] = e["mask"]
    pooled = torch.stack([e["pooled"] for e in entries])
    return EncoderOutput(tokens=tokens, pooled=pooled, mask=mask)
