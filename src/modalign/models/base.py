"""The contract every trainable model keeps, so one trainer and one evaluator serve all of them."""

from __future__ import annotations

from torch import nn


class AlignmentModel(nn.Module):
    """Base of `DualEncoder` and `VisionLanguageModel`. See docs/INTERFACES.md."""

    def components(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def collate(self, samples: list[dict]) -> dict:
        raise NotImplementedError

    def training_loss(self, batch: dict, objective: str) -> dict:
        raise NotImplementedError

    def enable_feature_cache(self, cache) -> None:
        raise NotImplementedError

    def save_pretrained(self, directory) -> None:
        raise NotImplementedError
