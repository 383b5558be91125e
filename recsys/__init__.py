"""Style-aware cross-selling for home e-commerce: the pure library (no web, no MLflow)."""

__version__ = "0.1.0"
