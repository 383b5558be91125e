"""What an aggregation engine returns: catalog-sized summaries of a window of orders.

Every learner that only needs co-occurrence counts (co-purchase, EASE, the feature
statistics) reads them from here, so they can be computed where the events are (in memory or
on a Spark cluster) and only these summaries travel to the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class OrderAggregates:
    """Co-occurrence counts of one window of orders (an item is in an order or not).

    ``pair_rows`` / ``pair_cols`` / ``pair_counts`` (p,) int64: the binary XᵀX of the orders x
    items matrix X as COO, diagonal included (= orders holding each item), zero entries
    absent, sorted by (row, col) so two engines give equal arrays. ``category_pairs``
    (n_categories, n_categories) int64: the same for order x category presence."""

    n_orders: int
    n_items: int
    pair_rows: np.ndarray
    pair_cols: np.ndarray
    pair_counts: np.ndarray
    category_pairs: np.ndarray

    def item_pairs(self) -> sp.csr_matrix:
        """XᵀX as (n_items, n_items) float64 CSR (exact integer counts)."""
        return sp.csr_matrix(
            (self.pair_counts.astype(np.float64), (self.pair_rows, self.pair_cols)),
            shape=(self.n_items, self.n_items),
        )

    @property
    def item_orders(self) -> np.ndarray:
        """(n_items,) int64: orders holding each item (the Gram matrix's diagonal)."""
        out = np.zeros(self.n_items, np.int64)
        diag = self.pair_rows == self.pair_cols
        out[self.pair_rows[diag]] = self.pair_counts[diag]
        return out


class AggregationEngine(Protocol):
    """Computes ``OrderAggregates`` of the purchase orders whose first line falls in a time
    window; how and where is the engine's business."""

    name: str

    def order_aggregates(
        self, start_ts: int | None = None, end_ts: int | None = None
    ) -> OrderAggregates:
        """Aggregates of the orders whose first purchase (epoch s) is in [start_ts, end_ts)
        (None = unbounded)."""
        ...


def n_categories(item_category: np.ndarray) -> int:
    """Number of category codes in use (codes are 0..n-1; -1 = no category)."""
    return int(item_category.max()) + 1 if item_category.size and item_category.max() >= 0 else 0


def sorted_coo(
    rows: np.ndarray, cols: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The COO triplets as int64, zero counts dropped, sorted by (row, col)."""
    rows, cols, counts = (np.asarray(a, dtype=np.int64) for a in (rows, cols, counts))
    keep = counts != 0
    rows, cols, counts = rows[keep], cols[keep], counts[keep]
    order = np.lexsort((cols, rows))
    return rows[order], cols[order], counts[order]
