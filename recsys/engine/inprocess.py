"""The in-process engine: aggregates from the orders x items matrix in memory (numpy/scipy).

This is the default and the reference the Spark engine is tested against; its memory grows
with the number of events (the whole order table is in memory), which is what the Spark
engine avoids.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recsys.data.orders import OrderTable
from recsys.engine.aggregates import (
    DAY,
    DENSE_MAX_ITEMS,
    ItemPopularity,
    OrderAggregates,
    check_popularity_params,
    n_categories,
    pair_matrix,
)


def binary_orders(orders: sp.spmatrix) -> sp.csr_matrix:
    """The orders x items matrix with every stored quantity set to 1 (float64 CSR)."""
    x = sp.csr_matrix(orders, dtype=np.float64)
    x.sum_duplicates()
    x.eliminate_zeros()
    x.data[:] = 1.0
    return x


def aggregate_orders(
    orders: sp.spmatrix,
    item_category: np.ndarray,
    dense_max_items: int = DENSE_MAX_ITEMS,
    min_pair_count: int = 1,
) -> OrderAggregates:
    """``OrderAggregates`` of ``orders`` (n_orders, n_items) quantities; ``item_category``
    (n_items,) category code per item (-1 none)."""
    x = binary_orders(orders)
    gram = (x.T @ x).tocsr()
    gram.data = np.rint(gram.data)
    cats = np.asarray(item_category, dtype=np.int64)
    n_cat = n_categories(cats)
    together = np.zeros((n_cat, n_cat), np.int64)
    if n_cat:
        known = cats >= 0
        to_cat = sp.csr_matrix(
            (np.ones(int(known.sum())), (np.flatnonzero(known), cats[known])),
            shape=(x.shape[1], n_cat),
        )
        has = (x @ to_cat).tocsr()
        has.data[:] = 1.0  # order x category presence
        together = np.rint((has.T @ has).toarray()).astype(np.int64)
    return OrderAggregates(
        n_orders=int(x.shape[0]),
        n_items=int(x.shape[1]),
        pairs=pair_matrix(gram, dense_max_items, min_pair_count),
        category_pairs=together,
    )


def popularity_of_orders(
    orders: sp.spmatrix, order_ts: np.ndarray, windows: Sequence[int], half_life_days: float
) -> ItemPopularity:
    """``ItemPopularity`` of ``orders`` (n_orders, n_items) whose first purchases are at
    ``order_ts`` (n_orders,) epoch seconds."""
    days = check_popularity_params(windows, half_life_days)
    x = binary_orders(orders)
    ts = np.asarray(order_ts, dtype=np.int64)
    if ts.shape != (x.shape[0],):
        raise ValueError(f"popularity: order_ts must have shape ({x.shape[0]},), got {ts.shape}")
    t_end = int(ts.max()) if ts.size else 0
    age_days = (t_end - ts) / DAY
    counts = np.zeros((len(days), x.shape[1]), np.float32)
    for w, window in enumerate(days):
        counts[w] = np.asarray(x[age_days < window].sum(axis=0)).ravel()
    weights = np.power(0.5, age_days / half_life_days)
    decayed = np.asarray(x.T @ weights, dtype=np.float32).ravel()
    return ItemPopularity(t_end, days, float(half_life_days), counts, decayed)


class InProcessEngine:
    """Aggregates windows of an ``OrderTable`` already in memory."""

    name = "inprocess"

    def __init__(
        self,
        orders: OrderTable,
        item_category: np.ndarray,
        dense_max_items: int = DENSE_MAX_ITEMS,
        min_pair_count: int = 1,
    ) -> None:
        self.orders = orders
        self.item_category = np.asarray(item_category, dtype=np.int64)
        self.dense_max_items = dense_max_items
        self.min_pair_count = min_pair_count

    def _window(self, start_ts: int | None, end_ts: int | None) -> np.ndarray:
        ts = self.orders.ts
        keep = np.ones(ts.shape, dtype=bool)
        if start_ts is not None:
            keep &= ts >= start_ts
        if end_ts is not None:
            keep &= ts < end_ts
        return np.flatnonzero(keep)

    def order_aggregates(
        self, start_ts: int | None = None, end_ts: int | None = None
    ) -> OrderAggregates:
        """See ``AggregationEngine.order_aggregates``."""
        rows = self._window(start_ts, end_ts)
        return aggregate_orders(
            self.orders.matrix[rows], self.item_category, self.dense_max_items, self.min_pair_count
        )

    def item_popularity(
        self,
        windows: Sequence[int],
        half_life_days: float,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> ItemPopularity:
        """See ``AggregationEngine.item_popularity``."""
        rows = self._window(start_ts, end_ts)
        return popularity_of_orders(
            self.orders.matrix[rows], self.orders.ts[rows], windows, half_life_days
        )
