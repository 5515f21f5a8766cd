"""Your own parts, in an importable module (a saved model rebuilds them by import path and config)."""
