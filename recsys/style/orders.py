"""The item co-purchase graph the style model propagates styles along (the orders matrix it
starts from is ``recsys.data.orders.build_orders``)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
