"""The per-item evidence a basket reading adds up, shared by the reader and its calibration.

An item's evidence for style k is log(p_k / prior_k) with p mixed with the prior first
(``smoothing``), so that no single item can rule a style out; neutral items (all-zero rows)
carry no evidence at all.
"""

from __future__ import annotations

import numpy as np

DEFAULT_SMOOTHING = 0.1


def item_log_ratios(
    item_styles: np.ndarray, prior: np.ndarray, smoothing: float = DEFAULT_SMOOTHING
) -> np.ndarray:
    """(n_items, n_styles) float32 log-likelihood ratios; zero rows for neutral items."""
    item_styles = np.asarray(item_styles, dtype=np.float64)
    active = item_styles.sum(axis=1) > 0
    smoothed = (1 - smoothing) * item_styles + smoothing * prior
    return np.where(active[:, None], np.log(smoothed) - np.log(prior), 0.0).astype(np.float32)


def posterior(log_prior: np.ndarray, evidence: np.ndarray, scale: float) -> np.ndarray:
    """prior * exp(scale * evidence), normalised; ``evidence`` (..., n_styles)."""
    z = log_prior + scale * evidence
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    out: np.ndarray = z / z.sum(axis=-1, keepdims=True)
    return out
