"""Audio and video in a VisionLanguageModel: each modality's own tower and connector, from items to LM tokens.

A conversation may hold `<image>`, `<audio>` and `<video>` placeholders in any order and number; a sample carries
its clips in `audio` (one) or `audios` (several, in text order) and its videos, lists of PIL frames, in `video` /
`videos`. Each modality has its tower (`audio`, `video`) and its connector (`audio_connector`, `video_connector`):
- prefix fusion: the k-th `<audio>` of a row is repeated to the number of LM positions its clip takes — the
  connector's `num_tokens` of the clip's real tower tokens (a token-wise `mlp` keeps one per token, a `perceiver` or
  `qformer` gives its fixed K) — and those positions are overwritten by the connector's output, as images are;
- cross-attention fusion (`xattn`): the placeholder stays one marker token and the connector's gated blocks, installed
  in the LM next to any other modality's, read the sample's clips (real tokens only, by mask).
A frozen tower's features come from the feature cache: clips by their samples (`audio_key`), frames by their pixels
(`image_key`, shared with the image tower's entries when the video reads frames with that tower).
"""

from __future__ import annotations

import inspect

import torch

from ..data.audio_io import as_waveform
from ..encoders.cache import audio_key, cached_forward, image_key
from .chat_template import AUDIO_TOKEN, VIDEO_TOKEN

MODALITIES = ("audio", "video")
PLACEHOLDERS = {"audio": AUDIO_TOKEN, "video": VIDEO_TOKEN}


def item_media(sample: dict, modality: str) -> list:
    """A sample's clips (or videos) in text order: `audios` / `videos` (several), `audio` / `video` (one), or none."""
    several = sample.get(modality + "s")
    if several is not None:
        return list(several)
    one = sample.get(modality)
    return [] if one is None else [one]


def call_connector(connector, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """A connector on padded tokens, with their mask when its forward takes one (perceiver, qformer, xattn)."""
    takes_mask = "mask" in inspect.signature(connector.forward).parameters
    return connector(features, mask) if takes_mask else connector(features)


def reads_frames(connector) -> bool:
    """Connectors that take [B, T, N, D] frames with time embeddings of their own (Flamingo's resampler)."""
    from ..connectors.perceiver import PerceiverResampler

    return isinstance(connector, PerceiverResampler)


class MediaMixin:
    """Audio and video parts of VisionLanguageModel (vlm.py holds the modules; this the way items reach the LM)."""

    def media_modalities(self) -> list[str]:
        return [m for m in MODALITIES if getattr(self, m, None) is not None]

    def placeholder_ids(self) -> dict[str, int]:
        """{modality: its placeholder token id} for the modalities this model has."""
        return {m: self.tokenizer.convert_tokens_to_ids(PLACEHOLDERS[m]) for m in self.media_modalities()}

    def _connector_of(self, modality: str):
        return getattr(self, f"{modality}_connector")

    def media_fusion(self, modality: str) -> str:
        return getattr(self._connector_of(modality), "fusion", "prefix")

    def _frame_tower(self):
        own = getattr(self.video, "frames", None)
        return own if own is not None else self.vision

    # -- collation ---------------------------------------------------------------------------------------------
    def media_batch(self, modality: str, per_sample: list[list]) -> dict | None:
        """What the tower and connector need for the batch's clips / videos (in sample, then text order), with the
        LM positions each one takes (`positions`) and how many each sample has (`counts`)."""
        if modality not in self.media_modalities():
            if any(per_sample):
                raise ValueError(
                    f"a sample holds {modality} but this model has no {modality} tower: build it with {modality}=..."
                )
            return None
        flat = [x for group in per_sample for x in group]
        counts = [len(group) for group in per_sample]
        token_id = self.tokenizer.convert_tokens_to_ids(PLACEHOLDERS[modality])
        if not flat:
            return {"counts": counts, "positions": [], "n": 0, "token_id": token_id}
        if modality == "audio":
            clips = [as_waveform(c) for c in flat]
            inputs = self.audio.preprocess(clips)
            lengths = [int(n) for n in self.audio.num_tokens(inputs)]
            out = {"inputs": inputs, "keys": [audio_key(c) for c in clips], "lengths": lengths}
        else:
            videos = [self.video.sample(v) for v in flat]
            frames = [f for v in videos for f in v]
            tower = self._frame_tower()
            prefix = "vid:" if getattr(self.video, "frames", None) is not None else ""  # own tower: own entries
            out = {
                "pixel_values": tower.preprocess(frames),
                "frame_keys": [prefix + image_key(f) for f in frames],
                "frames": [len(v) for v in videos],
                "lengths": [len(v) * self.video.tokens_per_frame(self._frame_tokens) for v in videos],
            }
        connector = self._connector_of(modality)
        prefix_fusion = self.media_fusion(modality) == "prefix"
        out["positions"] = [connector.num_tokens(n) if prefix_fusion else 1 for n in out["lengths"]]
        out.update(counts=counts, n=len(flat), token_id=token_id)
        return out

    # -- features ----------------------------------------------------------------------------------------------
    def media_features(self, modality: str, mb: dict):
        """Tower output for the batch's items: tokens [n, N, D] with mask [n, N] (real tokens first)."""
        if modality == "audio":
            frozen = not any(p.requires_grad for p in self.audio.parameters())
            cache = self._feature_cache if frozen else None
            return cached_forward(cache, mb["keys"], lambda: self.audio(**mb["inputs"]))
        tower = self._frame_tower()
        frozen = not any(p.requires_grad for p in tower.parameters())
        cache = self._feature_cache if frozen else None
        feats = cached_forward(cache, mb["frame_keys"], lambda: tower(mb["pixel_values"])).tokens  # [F, N, D]
        t_max = max(mb["frames"])
        frame_tokens = feats.new_zeros(len(mb["frames"]), t_max, *feats.shape[1:])  # [n, T, N, D]
        frame_mask = torch.zeros(len(mb["frames"]), t_max, dtype=torch.long)
        start = 0
        for i, t in enumerate(mb["frames"]):
            frame_tokens[i, :t] = feats[start : start + t]
            frame_mask[i, :t] = 1
            start += t
        return self.video(frame_tokens, frame_mask)

    def _connected(self, modality: str, mb: dict) -> torch.Tensor:
        out = self.media_features(modality, mb)
        tokens, mask = out.tokens, out.mask
        connector = self._connector_of(modality)
        if modality == "video" and reads_frames(connector):
            n, t = len(mb["frames"]), max(mb["frames"])
            tokens = tokens.reshape(n, t, -1, tokens.shape[-1])  # [n, T, N', D]: the resampler adds its own time
        if mask is not None and bool(mask.all()):
            mask = None
        return call_connector(connector, tokens, mask)

    def media_embeddings(self, modality: str, mb: dict) -> torch.Tensor:
        """Prefix fusion: [sum of positions, D_lm], each item's first `positions` connector outputs, in order."""
        out = self._connected(modality, mb)  # [n, M, D_lm]
        if out.dim() != 3:
            raise ValueError(f"the {modality} connector must give [B, M, D] tokens, got {tuple(out.shape)}")
        return torch.cat([out[i, :p] for i, p in enumerate(mb["positions"])])

    def set_media_of(self, modality: str, mb: dict | None) -> None:
        """Cross-attention fusion: hand each sample's real tokens of this modality to the connector's blocks."""
        connector = self._connector_of(modality)
        if mb is None or not mb["n"]:
            connector.clear_media()  # no clip in the batch: the LM's layers run untouched
            return
        out = self.media_features(modality, mb)
        real = out.mask if out.mask is not None else torch.ones(out.tokens.shape[:2], dtype=torch.long)
        rows, start = [], 0
        for c in mb["counts"]:
            parts = [out.tokens[j, : int(real[j].sum())] for j in range(start, start + c)]
            rows.append(torch.cat(parts) if parts else out.tokens.new_zeros(0, out.tokens.shape[-1]))
            start += c
        width = max(1, max(r.shape[0] for r in rows))
        media = out.tokens.new_zeros(len(rows), width, out.tokens.shape[-1])
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            media[i, : r.shape[0]], mask[i, : r.shape[0]] = r, 1
        connector.set_media(media, mask=None if bool(mask.all()) else mask)

    def clear_all_media(self) -> None:
        for connector in self.xattn_connectors():
            connector.clear_media()

    def xattn_connectors(self) -> list:
        found = [self.connector] if self.connector is not None and self.fusion == "xattn" else []
        return found + [self._connector_of(m) for m in self.media_modalities() if self.media_fusion(m) == "xattn"]

    def check_media_markers(self, text: str) -> None:
        """A rendered text may only hold placeholders of the modalities this model has."""
        for modality, token in PLACEHOLDERS.items():
            if token in text and modality not in self.media_modalities():
                raise ValueError(
                    f"the text holds {token} but this model has no {modality} tower: build it with {modality}=..."
                )


__all__ = ["MODALITIES", "PLACEHOLDERS", "MediaMixin", "call_connector", "item_media"]
