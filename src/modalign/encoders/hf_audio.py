"""`hf` audio tower: any local transformers audio encoder — Whisper, wav2vec 2.0, HuBERT, AST or CLAP's audio side.

The directory must hold the model (`config.json` + weights) and its feature extractor (`preprocessor_config.json`,
which `save_pretrained` of the extractor writes): the extractor's settings (window, mel bins, rate) belong to the
model. Clips are checked by the AudioProcessor, resampled to the extractor's rate (CLAP: 48 kHz) and fed as that
family expects; tokens are the last hidden states as a sequence, real where they cover the clip:

| model_type | tokens | real tokens |
|---|---|---|
| whisper | encoder states, one per 20 ms of the fixed window | ceil(frames / 2) |
| wav2vec2, hubert | the transformer's states, one per 20 ms | the conv stack's output length of the clip |
| audio-spectrogram-transformer | 2 specials + patches, reordered time-major | specials + patches starting in the clip |
| clap, clap_audio_model | the last Swin stage's grid, flattened | all (the extractor repeat-pads short clips) |

Traps handled here: `WhisperEncoder.from_pretrained` of a full Whisper directory (and `ClapAudioModel` of a full CLAP
one) silently returns random weights, so full models are loaded whole and their encoder taken; wav2vec2/HuBERT get an
attention mask only when their extractor says so (group-norm "base" variants are trained without one).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..data.audio_io import to_mono
from ..files import quiet_hf_loading, weights_sha256
from ..registry import ConfigError
from .audio_processor import AudioProcessor
from .base import AudioEncoder, EncoderOutput, masked_mean, prefix_mask

KINDS = {
    "whisper": "whisper",
    "wav2vec2": "wav2vec2",
    "hubert": "hubert",
    "audio-spectrogram-transformer": "ast",
    "clap": "clap",
    "clap_audio_model": "clap",
}


def _load(path: Path, model_type: str, architecture: str) -> nn.Module:
    import transformers as T

    kind = KINDS[model_type]
    if kind == "whisper":
        if architecture == "WhisperEncoder":
            from transformers.models.whisper.modeling_whisper import WhisperEncoder

            return WhisperEncoder.from_pretrained(str(path), local_files_only=True)
        return T.WhisperModel.from_pretrained(str(path), local_files_only=True).get_encoder()
    if kind in ("wav2vec2", "hubert"):
        return T.AutoModel.from_pretrained(str(path), local_files_only=True)
    if kind == "ast":
        return T.ASTModel.from_pretrained(str(path), local_files_only=True)
    if model_type == "clap":
        return T.ClapModel.from_pretrained(str(path), local_files_only=True).audio_model
    return T.ClapAudioModel.from_pretrained(str(path), local_files_only=True)  # AutoModel does not know this type


class HFAudioTower(AudioEncoder):
    def __init__(self, model: nn.Module, extractor, kind: str, max_seconds: float, trim: bool):
        super().__init__()
        self.model, self.extractor, self.kind = model, extractor, kind
        self.sampling_rate = int(extractor.sampling_rate)
        cfg = model.config
        self.hidden_size = int(getattr(cfg, "d_model", None) or cfg.hidden_size)
        self.processor = AudioProcessor(None, max_seconds=max_seconds, trim=trim)
        if kind == "whisper":
            need = 2 * cfg.max_source_positions
            if extractor.nb_max_frames != need:
                raise ConfigError(
                    f"the Whisper feature extractor gives {extractor.nb_max_frames} frames but the encoder takes "
                    f"{need}: save a WhisperFeatureExtractor with chunk_length={need // 100}"
                )
        if kind == "ast" and (extractor.max_length != cfg.max_length or extractor.num_mel_bins != cfg.num_mel_bins):
            raise ConfigError("the ASTFeatureExtractor's max_length / num_mel_bins differ from the model's config")
        if kind == "clap" and getattr(extractor, "truncation", None) == "fusion" and not cfg.enable_fusion:
            extractor.truncation = "rand_trunc"  # fusion features have 4 channels; a model without fusion takes 1

    def preprocess(self, clips: list) -> dict[str, torch.Tensor]:
        waves = [self.processor.waveform(c, f"audio clip {i}") for i, c in enumerate(clips)]
        waves = [to_mono(w, 16000, self.sampling_rate) for w in waves]
        fe, rate = self.extractor, self.sampling_rate
        if self.kind == "whisper":
            x = fe(waves, sampling_rate=rate, return_tensors="pt")
            inputs = {"input_features": x.input_features}
        elif self.kind in ("wav2vec2", "hubert"):
            x = fe(waves, sampling_rate=rate, return_tensors="pt", padding=True, return_attention_mask=True)
            inputs = {"input_values": x.input_values, "attention_mask": x.attention_mask}
        elif self.kind == "ast":
            inputs = {"input_values": fe(waves, sampling_rate=rate, return_tensors="pt").input_values}
        else:
            x = fe(waves, sampling_rate=rate, return_tensors="pt")
            inputs = {"input_features": x.input_features, "is_longer": x.is_longer}
        inputs["samples"] = torch.tensor([len(w) for w in waves], dtype=torch.long)
        return inputs

    def num_tokens(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        n, cfg = inputs["samples"], self.model.config
        if self.kind == "whisper":
            frames = (n + 159) // 160
            return ((frames + 1) // 2).clamp(1, cfg.max_source_positions)
        if self.kind in ("wav2vec2", "hubert"):
            return self.model._get_feat_extract_output_lengths(n).long().clamp(min=1)
        if self.kind == "ast":
            frames = (1 + (n - 400) // 160).clamp(1, cfg.max_length)  # kaldi fbank with snip_edges
            t_out = (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1
            f_out = (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1
            t_valid = ((frames + cfg.time_stride - 1) // cfg.time_stride).clamp(1, t_out)
            return 2 + f_out * t_valid
        grid = self._clap_grid()
        return torch.full_like(n, grid)

    def _clap_grid(self) -> int:
        cfg = self.model.config
        side = cfg.spec_size // cfg.patch_size // 2 ** (len(cfg.depths) - 1)
        return int(side * side)

    def forward(self, samples: torch.Tensor, **inputs: torch.Tensor) -> EncoderOutput:
        m, cfg = self.model, self.model.config
        if self.kind == "whisper":
            tokens = m(inputs["input_features"]).last_hidden_state
        elif self.kind in ("wav2vec2", "hubert"):
            mask = inputs["attention_mask"] if self.extractor.return_attention_mask else None
            tokens = m(inputs["input_values"], attention_mask=mask).last_hidden_state
        elif self.kind == "ast":
            hidden = m(inputs["input_values"]).last_hidden_state  # [B, 2 + f_out * t_out, D], frequency-major
            t_out = (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1
            f_out = (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1
            patches = hidden[:, 2:].reshape(hidden.shape[0], f_out, t_out, -1).transpose(1, 2).flatten(1, 2)
            tokens = torch.cat([hidden[:, :2], patches], 1)  # time-major, so the clip's patches come first
        else:
            out = m(input_features=inputs["input_features"], is_longer=inputs["is_longer"]).last_hidden_state
            tokens = out.flatten(2).transpose(1, 2)  # [B, C, F', T'] -> [B, F'*T', C]
        mask = prefix_mask(self.num_tokens({"samples": samples}).clamp(max=tokens.shape[1]), tokens.shape[1])
        return EncoderOutput(tokens=tokens, pooled=masked_mean(tokens, mask), mask=mask)


def build_hf_audio(*, path: str, max_seconds: float = 30.0, trim: bool = False) -> HFAudioTower:
    """A local transformers audio encoder directory (Whisper, wav2vec2, HuBERT, AST, CLAP) with its feature
    extractor; never downloads."""
    from transformers import AutoFeatureExtractor

    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ConfigError(f"audio tower path {path!r} is not a local checkpoint directory with a config.json")
    if not (p / "preprocessor_config.json").is_file():
        raise ConfigError(
            f"{p} has no preprocessor_config.json: save the model's feature extractor into it too "
            "(`extractor.save_pretrained(dir)`); its window and mel settings belong to the model"
        )
    cfg = json.loads((p / "config.json").read_text())
    model_type, arch = cfg.get("model_type"), (cfg.get("architectures") or [""])[0]
    if model_type not in KINDS:
        raise ConfigError(f"{p} holds a {model_type!r} model; the `hf` audio tower loads {', '.join(sorted(KINDS))}")
    with quiet_hf_loading():
        extractor = AutoFeatureExtractor.from_pretrained(str(p), local_files_only=True)
        model = _load(p, model_type, arch)
    if KINDS[model_type] == "clap":
        max_seconds = min(max_seconds, 10.0)  # CLAP's extractor crops longer clips at random
    if KINDS[model_type] == "whisper":
        max_seconds = min(max_seconds, float(extractor.chunk_length))  # the extractor's fixed window
    if KINDS[model_type] == "ast":
        max_seconds = min(max_seconds, int(model.config.max_length) / 100)
    model.eval()
    tower = HFAudioTower(model, extractor, KINDS[model_type], max_seconds, trim)
    tower.pretrained_source = {"name": "hf", "path": str(p), "sha256": weights_sha256(p)}
    return tower
