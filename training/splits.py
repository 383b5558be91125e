"""Temporal splits and basket completions: the evaluation protocol every stage shares.

Orders are cut by time into consecutive windows holding given shares of the orders (the cut
points are timestamps, so every order of a window is later than every order of the previous
one). Within a later window, part of each order's distinct items is hidden and must be
recovered from the rest (leave-some-items-out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
            self.matrix[idx], self.ts[idx], self.order_ids[idx], self.user_ids[idx],
            self.line_rows, self.line_ts,
        )

    def items_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.matrix.indptr[i], self.matrix.indptr[i + 1]
        return self.matrix.indices[lo:hi].astype(np.int64), self.matrix.data[lo:hi].astype(np.int64)


def build_orders(interactions: Interactions, catalog: Catalog) -> OrderTable:
    """Group purchase events of catalog SKUs into an ``OrderTable`` (unknown SKUs dropped)."""
    frame = interactions.purchases()
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
        (frame["quantity"].to_numpy(np.float32), (codes, rows)), shape=(n, len(catalog)), dtype=np.float32
    )
    mat.sum_duplicates()
    order = np.argsort(first_ts, kind="stable")
    return OrderTable(
        mat[order], first_ts[order], np.asarray(order_ids, object)[order], users[order], rows, ts
    )


def window_cuts(ts: np.ndarray, shares: Sequence[float], cutoff: int | None = None) -> list[int]:
    """Timestamps cutting sorted order times ``ts`` into ``len(shares)`` windows holding those
    shares of the orders. With ``cutoff`` the last window starts exactly there and the earlier
    windows split the orders before it in proportion to their shares."""
    shares = np.asarray(shares, dtype=np.float64)
    if cutoff is not None:
        before = ts[ts < cutoff]
        head = shares[:-1] / shares[:-1].sum()
        bounds = np.cumsum(head)[:-1]
        cuts = [int(before[min(int(b * len(before)), len(before) - 1)]) for b in bounds] if len(before) else []
        return [*cuts, int(cutoff)]
    bounds = np.cumsum(shares)[:-1]
    return [int(ts[min(int(b * len(ts)), len(ts) - 1)]) for b in bounds]


def window_masks(ts: np.ndarray, cuts: Sequence[int]) -> list[np.ndarray]:
    """Boolean masks of the windows ``[-inf, c0), [c0, c1), ..., [c_last, inf)``."""
    edges = [np.iinfo(np.int64).min, *cuts, np.iinfo(np.int64).max]
    return [(ts >= lo) & (ts < hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class Completion:
    """One basket-completion example: the visible part of an order and its hidden items."""

    order: int  # index in the OrderTable it came from
    visible: np.ndarray  # (m,) rows
    visible_qty: np.ndarray  # (m,)
    hidden: np.ndarray  # (h,) rows


def hide_items(
    orders: OrderTable, fraction: float, rng: np.random.Generator, max_orders: int | None = None
) -> list[Completion]:
    """For each order with at least two distinct items, hide ``max(1, round(fraction * m))``
    of its ``m`` distinct items (at most ``m - 1``), chosen at random. ``max_orders`` keeps a
    random sample of the eligible orders (in time order)."""
    sizes = np.diff(orders.matrix.indptr)
    eligible = np.nonzero(sizes >= 2)[0]
    if max_orders is not None and len(eligible) > max_orders:
        eligible = np.sort(rng.choice(eligible, size=max_orders, replace=False))
    out = []
    for i in eligible:
        items, qty = orders.items_of(int(i))
        m = len(items)
        h = min(max(1, int(round(fraction * m))), m - 1)
        perm = rng.permutation(m)
        hid, vis = perm[:h], np.sort(perm[h:])
        out.append(Completion(int(i), items[vis], qty[vis], np.sort(items[hid])))
    return out
