"""Layer package: see docs/INTERFACES.md."""
