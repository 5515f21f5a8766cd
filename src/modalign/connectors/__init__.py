"""Layer 4: connectors from encoder features into a language model's space, found by name.

Prefix fusion (`fusion = "prefix"`): `forward(features [B, N, Din]) -> [B, M, Dout]`, `num_tokens(N) -> M`.
- `linear`, `mlp` (projectors.py): one LM token per feature token (LLaVA).
- `pixel-shuffle` (pixel_shuffle.py): s x s tokens merged into one, then projected (Idefics3, InternVL).
- `qformer` (qformer.py): K learned queries (BLIP-2).
- `perceiver` (perceiver.py): K latents, Flamingo's Perceiver Resampler.
Cross-attention fusion (`fusion = "xattn"`): `xattn` (xattn.py), gated blocks installed into the LM's layers.
Weight ports from the transformers reference classes live in hf_port.py.
"""

from modalign.connectors.perceiver import PerceiverResampler
from modalign.connectors.pixel_shuffle import PixelShuffleConnector
from modalign.connectors.projectors import LinearProjector, MLPProjector
from modalign.connectors.qformer import QFormer
from modalign.connectors.xattn import GatedCrossAttentionBlock, XAttnConnector
from modalign.registry import build_module

CONNECTORS: dict = {
    "module": build_module,  # the user's own class (see models/parts.py)
    "linear": LinearProjector,
    "mlp": MLPProjector,
    "pixel-shuffle": PixelShuffleConnector,
    "qformer": QFormer,
    "perceiver": PerceiverResampler,
    "xattn": XAttnConnector,
}

__all__ = [
    "CONNECTORS",
    "GatedCrossAttentionBlock",
    "LinearProjector",
    "MLPProjector",
    "PerceiverResampler",
    "PixelShuffleConnector",
    "QFormer",
    "XAttnConnector",
]
