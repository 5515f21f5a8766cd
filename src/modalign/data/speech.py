"""Speech synthesis with espeak-ng (Debian `espeak-ng`), cached on disk by what was said and how.

`Voice(name, speed, pitch)` is one way of saying a text: an espeak-ng voice with an optional variant (`en-us+f3`),
words per minute and pitch (0-99). `synthesize(text, voice)` returns a float32 waveform at 16 kHz; the clip is
written once into `$MODALIGN_CACHE/speech/` (a 16-bit WAV named by the sha1 of text, voice and espeak-ng version), so a
second run, another dataset or another process reads it back instead of synthesising again.

espeak-ng's own traps: an unknown voice fails (exit code 1) but an unknown variant is silently ignored, so variants
are checked against `espeak-ng --voices=variant`; MBROLA voices (`mb-*`) need a binary Debian does not ship here.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files import cache_dir
from .audio_io import AUDIO_RATE, AudioError, load_audio, write_wav

INSTALL = "apt-get install espeak-ng (Debian/Ubuntu), or make setup"


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice (`en-us`, `en-gb-x-rp`, with a variant `en-us+f3`), words per minute and pitch 0-99."""

    name: str
    speed: int = 160
    pitch: int = 50

    def tag(self) -> str:
        return f"{self.name}@{self.speed}wpm/p{self.pitch}"


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise AudioError(f"speech synthesis needs espeak-ng: {INSTALL}")
    return exe


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=False).stdout
    return out.split("Data at")[0].strip()


@functools.lru_cache(maxsize=1)
def known_variants() -> frozenset[str]:
    out = subprocess.run([espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=False).stdout
    names = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.update((parts[3], parts[4].split("/")[-1]))  # `+name` takes the voice name or its file name
    return frozenset(names)


def check_voice(voice: Voice) -> None:
    base, _, variant = voice.name.partition("+")
    if base.startswith("mb-"):
        raise AudioError(f"voice {voice.name!r} is an MBROLA voice, which needs the mbrola binary: use an espeak voice")
    if variant and variant not in known_variants():
        raise AudioError(f"espeak-ng has no variant {variant!r} (espeak-ng --voices=variant lists them)")
    if not 80 <= voice.speed <= 450 or not 0 <= voice.pitch <= 99:
        raise AudioError(f"voice {voice.tag()}: speed must be 80-450 words per minute and pitch 0-99")


def _cache_path(text: str, voice: Voice) -> Path:
    key = hashlib.sha1(f"{espeak_version()}|{voice.tag()}|{text}".encode()).hexdigest()
    return cache_dir() / "speech" / key[:2] / f"{key}.wav"


def synthesize(text: str, voice: Voice = Voice("en-us"), cache: bool = True) -> np.ndarray:
    """A float32 waveform at 16 kHz of `voice` reading `text` (from the disk cache when it was said before)."""
    if not isinstance(text, str) or not text.strip():
        raise AudioError(f"nothing to say: the text is empty ({text!r})")
    path = _cache_path(text, voice)
    if cache and path.is_file():
        return load_audio(path)
    check_voice(voice)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        cmd = [espeak_binary(), "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-w", str(wav)]
        done = subprocess.run([*cmd, "--", text], capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
            raise AudioError(f"espeak-ng could not say {text[:40]!r} as {voice.tag()}: {done.stderr.strip()}")
        audio = load_audio(wav, AUDIO_RATE)  # espeak-ng writes 22050 Hz; resampled here
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp.wav")
        write_wav(tmp_path, audio)
        os.replace(tmp_path, path)  # atomic: a reader never sees half a clip
        return load_audio(path)  # what later runs read back (16-bit), so the first run sees the same samples
    return audio
