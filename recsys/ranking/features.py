"""What the ranker's features are computed from, and the interface of the thing that computes
them. The definitions live in ``feature_store`` (one place, used offline and online); this pure
library only knows the interface, and the bundle loader injects the implementation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class CandidateBatch:
    """Candidates of ``n_q`` baskets, flattened: query ``q`` owns positions
    ``query_ptr[q]:query_ptr[q+1]`` of the (n,) / (n, ...) arrays.

    ``source_scores`` / ``source_ranks`` are (n, n_sources) float32 with NaN where a source did
    not propose the item (ranks are 1-based); ``basket_style`` and ``user_affinity`` are
    (n_q, n_styles) float32 (zeros = unknown style, NaN rows = unknown user);
    ``now`` is (n_q,) int64 epoch seconds: features use only events strictly before it;
    ``user_rows`` (n_q,) int64 the shopper's row in the model's user index (-1 = unknown,
    None = not given)."""

    query_ptr: np.ndarray
    cand_rows: np.ndarray
    source_scores: np.ndarray
    source_ranks: np.ndarray
    source_names: tuple[str, ...]
    basket_rows: Sequence[np.ndarray]
    basket_qty: Sequence[np.ndarray]
    basket_style: np.ndarray
    style_confidence: np.ndarray
    user_affinity: np.ndarray
    now: np.ndarray
    user_rows: np.ndarray | None = None

    @property
    def n_queries(self) -> int:
        return len(self.query_ptr) - 1

    def query_of(self) -> np.ndarray:
        """(n,) int64: the query each candidate belongs to."""
        return np.repeat(np.arange(self.n_queries), np.diff(self.query_ptr))


class FeatureAssembler(Protocol):
    """Computes the feature matrix of a batch from the feature set's definitions."""

    feature_set: str
    version: int
    feature_names: tuple[str, ...]

    def compute(self, batch: CandidateBatch) -> np.ndarray:
        """(n, n_features) float32, columns in ``feature_names`` order (NaN = missing)."""
        ...

    def strongest_partner(self, basket_rows: np.ndarray, cand_rows: np.ndarray) -> np.ndarray:
        """(len(cand_rows),) int64: the basket row most associated with each candidate
        (co-purchase lift), -1 when none; used for "often bought with ..." reasons."""
        ...

    def popularity(self, now: int, window_days: int) -> np.ndarray:
        """(n_items,) float64 purchase counts in ``[now - window, now)``."""
        ...

    def save(self, directory: Path) -> None: ...
