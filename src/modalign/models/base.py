"""The contract every trainable model keeps, so one trainer and one evaluator serve all of them."""

from __future__ import annotations

from torch import nn


class AlignmentModel(nn.Module):
    """Base of `DualEncoder` and `VisionLanguageModel`. See docs/INTERFACES.md.

    `forward(batch, objective)` is `training_loss`, so DistributedDataParallel's hooks see the training step.
    """

    def forward(self, batch: dict, objective: str) -> dict:
        return self.training_loss(batch, objective)

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
