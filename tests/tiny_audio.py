"""Tiny random transformers audio encoders saved with their feature extractors, and test clips (no downloads)."""

from __future__ import annotations

import numpy as np
import torch

KINDS = ("whisper", "wav2vec2", "hubert", "ast", "clap")


def make_tiny(kind: str, out_dir: str, seed: int = 0) -> str:
    import transformers as T

    torch.manual_seed(seed)
    if kind == "whisper":
        cfg = T.WhisperConfig(
            d_model=64,
            encoder_layers=2,
            encoder_attention_heads=4,
            encoder_ffn_dim=128,
            decoder_layers=1,
            decoder_attention_heads=4,
            decoder_ffn_dim=128,
            num_mel_bins=80,
            max_source_positions=500,  # 1000 mel frames = 10 s: the extractor's chunk_length must match
            vocab_size=100,
            max_target_positions=32,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
        model, fe = T.WhisperModel(cfg), T.WhisperFeatureExtractor(feature_size=80, chunk_length=10)
    elif kind in ("wav2vec2", "hubert"):
        config_cls, model_cls = (
            (T.Wav2Vec2Config, T.Wav2Vec2Model) if kind == "wav2vec2" else (T.HubertConfig, T.HubertModel)
        )
        cfg = config_cls(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            vocab_size=32,
            mask_time_prob=0.0,
        )
        model, fe = model_cls(cfg), T.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    elif kind == "ast":
        cfg = T.ASTConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_mel_bins=32,
            max_length=300,
            patch_size=16,
            frequency_stride=10,
            time_stride=10,
        )
        model, fe = T.ASTModel(cfg), T.ASTFeatureExtractor(num_mel_bins=32, max_length=300)
    elif kind == "clap":
        cfg = T.ClapAudioConfig(
            patch_embeds_hidden_size=16,
            hidden_size=128,
            depths=[1, 1, 1, 1],
            num_attention_heads=[1, 2, 4, 8],
            projection_dim=32,
            enable_fusion=False,
        )
        model, fe = T.ClapAudioModel(cfg), T.ClapFeatureExtractor(truncation="rand_trunc")
    else:
        raise ValueError(kind)
    model.save_pretrained(out_dir)
    fe.save_pretrained(out_dir)
    return out_dir


def tone(seconds: float, hz: float = 440.0, rate: int = 16000, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)
