"""Purchases grouped into orders: the (n_orders, n_items) matrix every learner starts from
(candidate generators, the style model, the feature statistics, the evaluation protocol)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.catalog import Catalog
from recsys.data.interactions import Interactions


@dataclass(frozen=True)
class OrderTable:
    """Purchases grouped into orders, sorted by time.

    ``matrix`` (n_orders, n_items) CSR of quantities; ``ts`` (n_orders,) int64 epoch seconds
    of each order's first line; ``order_ids`` / ``user_ids`` (n_orders,) object (user None =
    guest); ``line_rows`` / ``line_ts`` (e,) every purchase line (for the popularity timeline)."""

    matrix: sp.csr_matrix
    ts: np.ndarray
    order_ids: np.ndarray
    user_ids: np.ndarray
    line_rows: np.ndarray
    line_ts: np.ndarray

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def subset(self, mask: np.ndarray) -> OrderTable:
        idx = np.nonzero(mask)[0]
        return OrderTable(
            self.matrix[idx],
            self.ts[idx],
            self.order_ids[idx],
            self.user_ids[idx],
            self.line_rows,
            self.line_ts,
        )

    def before(self, ts: int) -> OrderTable:
        """The orders and purchase lines strictly before ``ts``: all that a model fitted at
        ``ts`` can know (its point-in-time lookups must not see later purchases)."""
        lines = self.line_ts < ts
        return replace(
            self.subset(self.ts < ts), line_rows=self.line_rows[lines], line_ts=self.line_ts[lines]
        )

    def items_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.matrix.indptr[i], self.matrix.indptr[i + 1]
        return self.matrix.indices[lo:hi].astype(np.int64), self.matrix.data[lo:hi].astype(np.int64)


def build_orders(
    interactions: Interactions, catalog: Catalog, before: pd.Timestamp | None = None
) -> OrderTable:
    """Group purchase events of catalog SKUs into an ``OrderTable`` (unknown SKUs dropped,
    repeated lines of an item summed). ``before`` keeps only events strictly earlier (a
    training window)."""
    frame = interactions.purchases()
    if before is not None:
        frame = frame[frame["ts"] < before]
    rows = np.fromiter((catalog.ids.get(s) for s in frame["sku"]), np.int64, len(frame))
    keep = rows >= 0
    frame, rows = frame[keep], rows[keep]
    ts = (frame["ts"].astype("int64") // 1_000_000_000).to_numpy(np.int64)
    codes, order_ids = pd.factorize(frame["order_id"].to_numpy())
    n = len(order_ids)
    first_ts = np.full(n, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first_ts, codes, ts)
    users = np.empty(n, dtype=object)
    users[codes] = frame["user_id"].to_numpy(object)
    mat = sp.csr_matrix(
        (frame["quantity"].to_numpy(np.float32), (codes, rows)),
        shape=(n, len(catalog)),
        dtype=np.float32,
    )
    mat.sum_duplicates()
    order = np.argsort(first_ts, kind="stable")
    return OrderTable(
        mat[order], first_ts[order], np.asarray(order_ids, object)[order], users[order], rows, ts
    )
