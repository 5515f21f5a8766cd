"""A tiny AlignmentModel and dataset for trainer tests (imported by tests/test_train*.py and the torchrun scripts).

The toy keeps the model contract (components, collate, training_loss, enable_feature_cache, save_pretrained, and
enable_lora) with a few hundred parameters, so trainer behaviour is checked in milliseconds:
  - objective `caption`: cross-entropy mean over examples;
  - objective `instruct`: a token-weighted mean (example i counts 1 + id % 3 "tokens"), returning `loss_weight`;
  - objective `contrastive`: the CLIP loss of `modalign.losses` when present (all-gather with gradient under DDP).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_model
from torch import nn
from torch.utils.data import Dataset

from modalign.config import RecipeConfig
from modalign.encoders.base import EncoderOutput
from modalign.encoders.cache import cached_forward
from modalign.models.base import AlignmentModel

DIM, HIDDEN, CLASSES = 6, 8, 3


class ToyPairs(Dataset):
    def __init__(self, n: int = 24, seed: int = 0, bad_index: int | None = None, skip_bad: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, DIM, generator=g)
        self.y = torch.randint(0, CLASSES, (n,), generator=g)
        self.bad_index = bad_index
        # skip_bad drops the bad record up front, as real datasets do, and counts it
        self.order = [i for i in range(n) if not (skip_bad and i == bad_index)]
        self.skipped = n - len(self.order)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict:
        i = self.order[i]
        if i == self.bad_index:
            raise OSError("truncated file")
        return {"id": f"toy-{i}", "x": self.x[i], "label": int(self.y[i]), "text": f"class {int(self.y[i])}"}

    def texts(self):
        return (f"class {int(c)}" for c in self.y)


class ToyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, h):  # [B, H]
        out = self.proj(h)
        if hasattr(self, "lora_A"):
            out = out + h @ self.lora_A.T @ self.lora_B.T
        return out


class ToyModel(AlignmentModel):
    def __init__(self, dropout: float = 0.1):
        super().__init__()
        self.vision = nn.Sequential(nn.Linear(DIM, HIDDEN), nn.LayerNorm(HIDDEN), nn.Tanh())
        self.text = nn.Embedding(CLASSES, HIDDEN)
        self.lm = ToyLM()
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(HIDDEN, CLASSES))
        self.cache = None

    def components(self):
        comps = {"vision": self.vision, "text": self.text, "lm": self.lm, "head": self.head}
        if hasattr(self.lm, "lora_A"):
            comps["lm.lora"] = self.lm
        return comps

    def enable_lora(self, cfg):
        self.lm.lora_A = nn.Parameter(torch.randn(cfg.r, HIDDEN) * 0.1)
        self.lm.lora_B = nn.Parameter(torch.zeros(HIDDEN, cfg.r))

    def collate(self, samples):
        return {
            "ids": [s["id"] for s in samples],
            "x": torch.stack([s["x"] for s in samples]),
            "label": torch.tensor([s["label"] for s in samples]),
        }

    def enable_feature_cache(self, cache):
        self.cache = cache

    def encode_image(self, batch) -> torch.Tensor:
        def compute():
            h = self.vision(batch["x"])  # [B, H]
            return EncoderOutput(tokens=h[:, None], pooled=h)

        # The contract: only a frozen tower reads the cache (the trainer enables it when vision and/or text is frozen)
        frozen = not any(p.requires_grad for p in self.vision.parameters())
        keys = batch["ids"] if self.cache is not None and frozen else None
        return cached_forward(self.cache, keys, compute).pooled

    def training_loss(self, batch, objective):
        h = self.lm(self.encode_image(batch))  # [B, H]
        if objective == "contrastive":
            from modalign.losses import clip_loss

            t = self.text(batch["label"])
            return {"loss": clip_loss(F.normalize(h, dim=-1), F.normalize(t, dim=-1), torch.tensor(10.0))}
        logits = self.head(h)  # [B, C]
        ce = F.cross_entropy(logits, batch["label"], reduction="none")  # [B]
        acc = (logits.argmax(-1) == batch["label"]).float().mean()
        if objective == "instruct":
            tokens = torch.tensor([1.0 + int(i.split("-")[1]) % 3 for i in batch["ids"]])  # [B]
            return {"loss": (ce * tokens).sum() / tokens.sum(), "loss_weight": tokens.sum(), "acc": acc}
        return {"loss": ce.mean(), "acc": acc}

    def save_pretrained(self, directory):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_model(self, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps({"model": {"kind": "toy"}}))


def toy_builder(dropout: float = 0.1):
    return lambda cfg, text_corpus=None: ToyModel(dropout=dropout)


DATASETS = {"toy": ToyPairs}


def toy_recipe(stages: list[dict], seed: int = 0) -> RecipeConfig:
    base = {
        "objective": "caption",
        "data": {"name": "toy"},
        "steps": 4,
        "batch_size": 4,
        "lr": 0.05,
        "log_every": 1,
        "max_grad_norm": None,
    }
    return RecipeConfig.model_validate(
        {
            "name": "toy",
            "seed": seed,
            "model": {"kind": "dual", "vision": {"name": "toy"}, "text": {"name": "toy"}},
            "stages": [{**base, **s} for s in stages],
        }
    )


def final_state(out_dir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(out_dir) / "final" / "model.safetensors"))


def ddp_recipe(grad_accum: int, objective: str) -> RecipeConfig:
    """The recipe the 2-process test runs, and its single-process reference."""
    return toy_recipe(
        [
            {
                "name": "a",
                "objective": objective,
                "train": ["vision", "head"],
                "batch_size": 8,
                "steps": 3,
                "grad_accum": grad_accum,
                "weight_decay": 0.1,
                "max_grad_norm": 0.5,
                "data": {"name": "toy", "n": 12},
            },
            # `text` gets no gradient from these objectives: DDP then needs find_unused_parameters (probed)
            {
                "name": "b",
                "objective": objective,
                "train": ["head", "text"],
                "batch_size": 4,
                "steps": 2,
                "grad_accum": grad_accum,
            },
        ]
    )


def dual_recipe(loss: str = "clip", steps: tuple[int, int] = (3, 2), n: int = 8, lr: float = 0.01) -> RecipeConfig:
    """A real DualEncoder (from-scratch ViT + transformer text tower) at toy size on the shapes world:
    a LiT stage (vision locked, features cached) then a full stage."""
    data = {"name": "shapes", "n": n, "image_size": 32}
    stage = {"objective": "contrastive", "data": data, "batch_size": 4, "lr": lr, "log_every": 1, "checkpoint_every": 2}
    return RecipeConfig.model_validate(
        {
            "name": "dual",
            "model": {
                "kind": "dual",
                "embed_dim": 16,
                "loss": loss,
                "vision": {
                    "name": "vit",
                    "image_size": 32,
                    "patch_size": 8,
                    "hidden_size": 16,
                    "num_layers": 1,
                    "num_heads": 2,
                    "mlp_ratio": 2,
                },
                "text": {
                    "name": "transformer",
                    "hidden_size": 16,
                    "num_layers": 1,
                    "num_heads": 2,
                    "mlp_ratio": 2,
                    "max_length": 16,
                },
            },
            "stages": [
                {**stage, "name": "lit", "steps": steps[0], "train": ["text", "head"]},
                {**stage, "name": "full", "steps": steps[1], "train": ["vision", "text", "head"]},
            ],
        }
    )


# Adam divides by sqrt(v): for entries whose gradient is near zero, float-summation-order differences between one
# and two processes (1e-7 relative) become visible update differences proportional to lr; 0.002 keeps 5 steps of
# them under the 1e-5 comparison tolerance.
DDP_LR = 0.002


def log_series(out_dir, key: str) -> list[float]:
    """One logged scalar per training step, from log.jsonl."""
    rows = [json.loads(x) for x in (Path(out_dir) / "log.jsonl").read_text().splitlines()]
    return [r[key] for r in rows if "event" not in r and key in r]
