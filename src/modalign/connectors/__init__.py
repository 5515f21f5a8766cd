"""Layer 4: connectors from encoder features into a language model's space, found by name."""

CONNECTORS: dict = {}
