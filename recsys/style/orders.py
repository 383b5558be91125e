"""The (n_orders, n_items) purchase matrix the style model learns co-purchase behaviour from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.catalog import Catalog
from recsys.data.interactions import Interactions


def order_matrix(
    interactions: Interactions, catalog: Catalog, before: pd.Timestamp | None = None
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Purchases as CSR (n_orders, n_items) of quantities, and the order ids (n_orders,); rows
    in time order of each order's first purchase event (interactions are sorted by time).

    Only ``purchase`` events of SKUs in the catalog count; ``before`` keeps orders whose events
    are strictly earlier (the training window)."""
    frame = interactions.purchases()
    if before is not None:
        frame = frame[frame["ts"] < before]
    rows = np.fromiter((catalog.ids.get(s) for s in frame["sku"]), np.int64, len(frame))
    keep = rows >= 0
    order_codes, order_ids = pd.factorize(frame["order_id"].to_numpy()[keep])
    qty = frame["quantity"].to_numpy(np.float32)[keep]
    mat = sp.csr_matrix(
        (qty, (order_codes, rows[keep])), shape=(len(order_ids), len(catalog)), dtype=np.float32
    )
    mat.sum_duplicates()
    return mat, np.asarray(order_ids, dtype=object)


def co_purchase_graph(orders: sp.csr_matrix) -> sp.csr_matrix:
    """Symmetric (n_items, n_items) co-purchase weights, zero diagonal.

    Each order spreads one unit of weight over its item pairs (1 / (size - 1) per pair and item),
    so a 60-line wholesale order does not outweigh sixty small baskets."""
    binary = orders.copy().tocsr()
    binary.data[:] = 1.0
    sizes = np.diff(binary.indptr)
    scale = np.where(sizes >= 2, 1.0 / np.maximum(sizes - 1, 1), 0.0).astype(np.float32)
    graph = (binary.T @ sp.diags(scale) @ binary).tocsr()
    graph.setdiag(0.0)
    graph.eliminate_zeros()
    return graph.astype(np.float32)
