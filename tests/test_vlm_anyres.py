"""AnyRes tiling in the VLM: per-image token counts, the learned row separator, batching and save/load."""

import numpy as np
import pytest
import torch
from PIL import Image
from test_vlm_tiny_parts import CORPUS

from modalign.config import ModelConfig
from modalign.encoders.cache import image_key
from modalign.models import load_model
from modalign.models.vlm import VisionLanguageModel
from modalign.registry import ConfigError

LM = dict(
    name="tiny-llama",
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    intermediate_size=64,
    max_position_embeddings=256,
    vocab_size=320,
)


def _cfg(anyres, connector="mlp"):
    return ModelConfig.model_validate(
        {
            "kind": "vlm",
            "lm": LM,
            "connector": {"name": connector},
            "vision": {"name": "tiny-clip-test", "anyres": anyres},
        }
    )


def _image(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = VisionLanguageModel.from_config(_cfg({"grid_pinpoints": [[32, 16], [16, 32], [32, 32]]}), text_corpus=CORPUS)
    return m.eval()


def test_token_counts_follow_the_tiling(model):
    wide, tall, square = _image(32, 16), _image(16, 32), _image(32, 32)
    _, counts, layouts = model.image_inputs([wide, tall, square])
    assert [g for g, _, _ in layouts] == [(1, 2), (2, 1), (2, 2)]
    # 4 tokens (2x2) per 16-px tile: global view 4 + grid map (+1 newline per map row)
    assert counts == [4 + 2 * 4 + 2, 4 + 4 * 2 + 4, 4 + 4 * 4 + 4]
    batch = model.collate(
        [{"id": "w", "image": wide, "text": "a red circle"}, {"id": "t", "image": tall, "text": "two green triangles"}]
    )
    assert (batch["input_ids"] == model.image_token_id).sum(1).tolist() == counts[:2]
    kw, kt = image_key(wide), image_key(tall)
    assert batch["pixel_values"].shape[0] == 3 + 3 and batch["image_keys"] == [f"{kw}@0", f"{kw}@1", f"{kw}@2"] + [
        f"{kt}@0",
        f"{kt}@1",
        f"{kt}@2",
    ]
    model.train()
    loss = model.training_loss(batch, "caption")["loss"]
    loss.backward()
    model.eval()
    assert model.image_newline.grad is not None and model.image_newline.grad.abs().sum() > 0


def test_anyres_generation_batched_equals_single_and_prefix_cache(model):
    ims = [_image(32, 16, 1), _image(16, 32, 2)]
    qs = ["What color is the square?", "Is there a circle?"]
    both = model.generate(ims, qs, max_new_tokens=4)
    assert both == [model.generate([im], [q], max_new_tokens=4)[0] for im, q in zip(ims, qs)]
    assert model.answer_many(ims[0], qs, max_new_tokens=4) == model.generate([ims[0]] * 2, qs, max_new_tokens=4)


def test_anyres_round_trips_and_rejects_bad_settings(model, tmp_path):
    model.save_pretrained(tmp_path)
    again = load_model(tmp_path)
    im = [_image(32, 16, 3)]
    assert torch.allclose(model.score(im, ["a red circle"]), again.score(im, ["a red circle"]))
    with pytest.raises(ConfigError, match="anyres does not take"):
        VisionLanguageModel.from_config(_cfg({"tiles": 4}), text_corpus=CORPUS)
    with pytest.raises(ConfigError, match="xattn"):
        VisionLanguageModel.from_config(_cfg({"max_tiles": 4}, "xattn"), text_corpus=CORPUS)
