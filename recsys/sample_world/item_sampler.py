"""Vectorised weighted choice of catalog rows within groups (category x style, or category)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class GroupedSampler:
    """Draw one row per request from the weighted rows of the requested group.

    All groups' cumulative weights live in one sorted array where group ``g`` occupies
    ``(g, g + 1]``, so a batch of draws is a single ``searchsorted``: no Python loop per draw.
    """

    def __init__(self, rows: Sequence[np.ndarray], weights: Sequence[np.ndarray]) -> None:
        if len(rows) != len(weights):
            raise ValueError("rows and weights must have one entry per group")
        cums, flat = [], []
        for g, (r, w) in enumerate(zip(rows, weights, strict=True)):
            w = np.asarray(w, dtype=np.float64)
            if len(r) == 0 or w.sum() <= 0:
                raise ValueError(f"group {g} has no rows with positive weight")
            c = np.cumsum(w) / w.sum()
            c[-1] = 1.0
            cums.append(g + c)
            flat.append(np.asarray(r, dtype=np.int64))
        self._cum = np.concatenate(cums)
        self._rows = np.concatenate(flat)
        self.n_groups = len(rows)

    def draw(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rows drawn for ``groups`` (shape (n,), ints in [0, n_groups)); returns (n,) int64."""
        groups = np.asarray(groups, dtype=np.int64)
        pos = np.searchsorted(self._cum, groups + rng.random(len(groups)), side="right")
        return self._rows[np.minimum(pos, len(self._rows) - 1)]
