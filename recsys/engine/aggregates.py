"""What an aggregation engine returns: catalog-sized summaries of a window of orders.

Every learner that only needs co-occurrence counts (co-purchase, EASE, the feature
statistics) or per-item popularity (the popular generator) reads them from here, so they can
be computed where the events are (in memory or on a Spark cluster) and only these summaries
travel to the driver. Their size depends on the catalog, never on the number of events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import numpy as np
import scipy.sparse as sp

# n x n int32 counts up to 10,000 items are 400 MB: the size of EASE's dense Gram anyway
DENSE_MAX_ITEMS = 10_000
DAY = 86_400

PairMatrix: TypeAlias = np.ndarray | sp.csr_matrix


@dataclass(frozen=True)
class OrderAggregates:
    """Co-occurrence counts of one window of orders (an item is in an order or not).

    ``pairs`` (n_items, n_items) int32: the binary XᵀX of the orders x items matrix X,
    diagonal included (= orders holding each item). A dense array when the catalog has at
    most ``dense_max_items`` items (its size is then fixed by the catalog, however many
    events or distinct pairs there are), else CSR with sorted indices and no stored zeros,
    without the off-diagonal counts below the engine's ``min_pair_count`` (1 = exact).
    ``category_pairs`` (n_categories, n_categories) int64: the same for order x category
    presence."""

    n_orders: int
    n_items: int
    pairs: PairMatrix
    category_pairs: np.ndarray

    def item_pairs(self) -> sp.csr_matrix:
        """XᵀX as (n_items, n_items) float64 CSR (exact integer counts)."""
        return sp.csr_matrix(self.pairs, dtype=np.float64)

    def pairs_among(self, items: np.ndarray) -> PairMatrix:
        """The counts among ``items`` (rows, ascending) as float64, in the stored form: a
        dense block is sliced without building an n x n sparse copy first (EASE's Gram)."""
        if isinstance(self.pairs, np.ndarray):
            block: np.ndarray = self.pairs[np.ix_(items, items)].astype(np.float64)
            return block
        return sp.csr_matrix(self.pairs[items][:, items], dtype=np.float64)

    @property
    def item_orders(self) -> np.ndarray:
        """(n_items,) int64: orders holding each item (the Gram matrix's diagonal)."""
        return np.asarray(self.pairs.diagonal(), dtype=np.int64)

    @property
    def n_pairs(self) -> int:
        """Item pairs (ordered, diagonal included) bought together at least once."""
        if isinstance(self.pairs, np.ndarray):
            return int(np.count_nonzero(self.pairs))
        return int(self.pairs.nnz)


@dataclass(frozen=True)
class ItemPopularity:
    """Per-item popularity of one window of orders, relative to its last order ``t_end``.

    ``counts`` (n_windows, n_items) float32: orders holding the item whose first purchase is
    less than ``windows[w]`` days before ``t_end``; ``decayed`` (n_items,) float32: the same
    orders weighted 0.5 ** (age in days / half-life)."""

    t_end: int
    windows: tuple[int, ...]
    half_life_days: float
    counts: np.ndarray
    decayed: np.ndarray


class AggregationEngine(Protocol):
    """Computes the aggregates of the purchase orders whose first line falls in a time
    window; how and where is the engine's business."""

    name: str

    def order_aggregates(
        self, start_ts: int | None = None, end_ts: int | None = None
    ) -> OrderAggregates:
        """Aggregates of the orders whose first purchase (epoch s) is in [start_ts, end_ts)
        (None = unbounded)."""
        ...

    def item_popularity(
        self,
        windows: Sequence[int],
        half_life_days: float,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> ItemPopularity:
        """Popularity of each item in the orders of [start_ts, end_ts) (see ``ItemPopularity``)."""
        ...


@dataclass(frozen=True)
class EngineWindow:
    """One engine and one window of orders: how ``TrainingData`` asks for its aggregates
    lazily, so that only the aggregates a pipeline's generators use are computed."""

    engine: AggregationEngine
    start_ts: int | None = None
    end_ts: int | None = None

    def order_aggregates(self) -> OrderAggregates:
        """``engine.order_aggregates`` of this window."""
        return self.engine.order_aggregates(self.start_ts, self.end_ts)

    def item_popularity(self, windows: Sequence[int], half_life_days: float) -> ItemPopularity:
        """``engine.item_popularity`` of this window."""
        return self.engine.item_popularity(windows, half_life_days, self.start_ts, self.end_ts)


def n_categories(item_category: np.ndarray) -> int:
    """Number of category codes in use (codes are 0..n-1; -1 = no category)."""
    return int(item_category.max()) + 1 if item_category.size and item_category.max() >= 0 else 0


def check_popularity_params(windows: Sequence[int], half_life_days: float) -> tuple[int, ...]:
    """The windows as a tuple of positive days; raises ``ValueError`` naming the bad value."""
    days = tuple(int(w) for w in windows)
    if not days or min(days) <= 0:
        raise ValueError(f"popularity: window_days must be positive, got {list(windows)!r}")
    if not half_life_days > 0:
        raise ValueError(f"popularity: half_life_days must be > 0, got {half_life_days}")
    return days


def prune_pairs(pairs: sp.csr_matrix, min_pair_count: int) -> sp.csr_matrix:
    """``pairs`` without off-diagonal counts below ``min_pair_count`` (the diagonal stays:
    it is each item's order count)."""
    if min_pair_count <= 1:
        return pairs
    coo = pairs.tocoo()
    keep = (coo.data >= min_pair_count) | (coo.row == coo.col)
    out = sp.csr_matrix(
        (coo.data[keep], (coo.row[keep], coo.col[keep])), shape=pairs.shape, dtype=np.int32
    )
    out.sort_indices()
    return out


def pair_matrix(pairs: sp.csr_matrix, dense_max_items: int, min_pair_count: int) -> PairMatrix:
    """A pair-count matrix in the canonical form of ``OrderAggregates.pairs``."""
    n = pairs.shape[0]
    if n <= dense_max_items:
        dense: np.ndarray = np.asarray(pairs.toarray(), dtype=np.int32)
        return dense
    out = prune_pairs(sp.csr_matrix(pairs, dtype=np.int32), min_pair_count)
    out.eliminate_zeros()
    out.sort_indices()
    return out
