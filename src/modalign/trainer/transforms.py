"""Batch transforms a stage applies after collation, by name: `transforms: [{name: token_noise, p: 0.1}]`.

A transform is built once per stage with the model (`setup(model)`), then maps each collated micro-batch to a new
one. Randomness comes from the global RNG, which checkpoints save and restore, so a resumed run stays exact.
`objectives` names the stage objectives a transform makes sense for; others are refused before training.

- `token_noise` (token_noise.py): a share `p` of the answer tokens the LM reads replaced by random ones, the
  targets kept (word dropout / BERT-style corruption), so the next word has to be read from the image.
"""

from __future__ import annotations

from ..registry import ConfigError
from .token_noise import corrupt_answer_inputs, replacement_ids


class TokenNoise:
    name = "token_noise"
    objectives = ("caption", "instruct")

    def __init__(self, p: float = 0.1):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p < 1:
            raise ConfigError(f"token_noise: p is the share of answer tokens replaced, in (0, 1); got {p!r}")
        self.p = float(p)
        self.candidates = None

    def setup(self, model) -> None:
        if not hasattr(model, "tokenizer"):
            raise ConfigError("token_noise corrupts the words an LM reads: it needs a vision-language model")
        self.candidates = replacement_ids(model.tokenizer)

    def __call__(self, batch: dict) -> dict:
        return corrupt_answer_inputs(batch, self.p, self.candidates)


BATCH_TRANSFORMS: dict = {"token_noise": TokenNoise}
