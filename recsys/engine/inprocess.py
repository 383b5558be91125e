"""The in-process engine: aggregates from the orders x items matrix in memory (numpy/scipy).

This is the default and the reference the Spark engine is tested against; its memory grows
with the number of events (the whole order table is in memory), which is what the Spark
engine avoids.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recsys.data.orders import OrderTable
from recsys.engine.aggregates import OrderAggregates, n_categories, sorted_coo


def binary_orders(orders: sp.spmatrix) -> sp.csr_matrix:
    """The orders x items matrix with every stored quantity set to 1 (float64 CSR)."""
    x = sp.csr_matrix(orders, dtype=np.float64)
    x.sum_duplicates()
    x.eliminate_zeros()
    x.data[:] = 1.0
    return x


def aggregate_orders(orders: sp.spmatrix, item_category: np.ndarray) -> OrderAggregates:
    """``OrderAggregates`` of ``orders`` (n_orders, n_items) quantities; ``item_category``
    (n_items,) category code per item (-1 none)."""
    x = binary_orders(orders)
    gram = (x.T @ x).tocoo()
    rows, cols, counts = sorted_coo(gram.row, gram.col, np.rint(gram.data))
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
        pair_rows=rows,
        pair_cols=cols,
        pair_counts=counts,
        category_pairs=together,
    )


class InProcessEngine:
    """Aggregates windows of an ``OrderTable`` already in memory."""

    name = "inprocess"

    def __init__(self, orders: OrderTable, item_category: np.ndarray) -> None:
        self.orders = orders
        self.item_category = np.asarray(item_category, dtype=np.int64)

    def order_aggregates(
        self, start_ts: int | None = None, end_ts: int | None = None
    ) -> OrderAggregates:
        """See ``AggregationEngine.order_aggregates``."""
        ts = self.orders.ts
        keep = np.ones(ts.shape, dtype=bool)
        if start_ts is not None:
            keep &= ts >= start_ts
        if end_ts is not None:
            keep &= ts < end_ts
        return aggregate_orders(self.orders.matrix[np.flatnonzero(keep)], self.item_category)
