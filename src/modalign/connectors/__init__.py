"""Layer 4: connectors from encoder features into a language model's space, found by name.

Prefix fusion (`fusion = "prefix"`): `forward(features [B, N, Din]) -> [B, M, Dout]`, `num_tokens(N) -> M`.
"""

from modalign.connectors.projectors import LinearProjector, MLPProjector

CONNECTORS: dict = {
    "linear": LinearProjector,
    "mlp": MLPProjector,
}

__all__ = ["CONNECTORS", "LinearProjector", "MLPProjector"]
