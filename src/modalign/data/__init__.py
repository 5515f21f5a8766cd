"""Layer 1: worlds, readers and collators. Knows nothing of models."""

DATASETS: dict = {}
