"""Which image patches drove a DualEncoder's image-text similarity: gradient x input of s(image, text).

s = <f(image), g(text)> with both embeddings L2-normalised (the cosine the contrastive loss scales). The text side
is a constant here; the gradient flows into the image tower at
- `on="layer"` (default for transformer towers): the normalised tokens entering the attention of encoder layer
  `layer` (default the last; see hooks.py for why the LayerNorm output and not the layer input). A ViT's pooled
  vector is its CLS token, which the output patch tokens do not feed, so the last layer is the latest place where
  patches still carry the score (Grad-CAM's choice of the last block for ViTs);
- `on="pixels"`: the pixels, averaged over each patch (any tower, CNNs included).
Maps are [h, w] numpy grids over the tower's patch tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from .hooks import encoder_layers, eval_mode, layer_norm_leaf
from .targets import grid_side
from .vlm_attribution import gradient_times_input


def _n_patches(model, pixel_values: torch.Tensor) -> int:
    with torch.no_grad():
        return int(model.vision(pixel_values).tokens.shape[1])


def dual_gradient_maps(model, image, texts: list[str], on: str | None = None, layer: int = -1) -> list[np.ndarray]:
    """One gradient x input map [h, w] of cos(image, text) per text."""
    if isinstance(texts, str):
        raise TypeError("dual_gradient_maps expects a list of texts; wrap a single text as [text]")
    layers = encoder_layers(model.vision)
    on = on or ("layer" if layers is not None else "pixels")
    if on not in ("layer", "pixels"):
        raise ValueError(f"gradient maps of a DualEncoder are taken on 'layer' or 'pixels', not {on!r}")
    if on == "layer" and layers is None:
        raise ValueError(f"the {type(model.vision).__name__} tower has no transformer layers: use on='pixels'")
    if on == "layer" and not -len(layers) <= layer < len(layers):
        raise ValueError(f"layer={layer} is outside the tower's {len(layers)} layers")
    pixel_values = model.vision.preprocess([image])  # [1, 3, H, W]
    side = grid_side(_n_patches(model, pixel_values))
    text_emb = model.embed_texts(list(texts))  # [K, E], no grad
    with eval_mode(model), torch.enable_grad():
        if on == "pixels":
            pixel_values.requires_grad_(True)
            img = model.encode_image(pixel_values)  # [1, E]
            wrt = pixel_values
        else:
            with layer_norm_leaf(layers[layer]) as grab:
                img = model.encode_image(pixel_values)  # [1, E]
            wrt = grab.leaf  # [1, (1+)N, D]
        sims = (img @ text_emb.T)[0]  # [K] cosines
        maps = []
        for k in range(len(texts)):
            (grad,) = torch.autograd.grad(sims[k], wrt, retain_graph=k < len(texts) - 1)
            maps.append(gradient_times_input(grad, wrt.detach(), side, "pixels" if on == "pixels" else "tokens"))
    return maps
