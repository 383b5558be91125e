"""Scores of given (basket, item) pairs under a linear item-item model (EASE's B, RP3beta's W).

The generators propose their own top-k; the ranker also wants their opinion of candidates
*other* generators proposed (an item EASE ranks 300th still has a meaningful EASE score). For a
basket indicator row x and a weight matrix W the score of item c is x·W[:, c] = sum over the
basket's items b of W[b, c]: a gather and a sum per pair, vectorised over the whole batch.

On the serving path (a handful of baskets) a sparse W is read row by row: each basket item's
row is a sorted slice of W's indices, searched for the candidates, so a request touches only
its basket's rows (scipy's fancy indexing of a CSR costs far more per call). Both paths add
the float64 values of each pair in the same order (basket items ascending, from 0.0), so the
float32 results are bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import CandidateQuery

SMALL_PAIR_BATCH = 16  # up to this many baskets, read a sparse W row by row (serving)


@runtime_checkable
class PairScorer(Protocol):
    """A generator that can score any candidate of a basket, not only those it proposed."""

    def score_pairs(
        self, queries: list[CandidateQuery], query_of: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) float32 score of catalog row ``rows[i]`` for basket ``queries[query_of[i]]``."""
        ...


def basket_lists(
    queries: Sequence[CandidateQuery], n_items: int, position: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's distinct known basket items, ascending, as CSR-style ``(indptr, items)``:
    the structure of ``basket_matrix`` without building a scipy matrix per request.
    ``position`` (n_items,) maps catalog rows to W's index space (-1 = not in W)."""
    parts = []
    for q in queries:
        r = np.asarray(q.rows, dtype=np.int64).ravel()
        r = r[(r >= 0) & (r < n_items)]
        if position is not None:
            r = position[r]
            r = r[r >= 0]
        parts.append(np.unique(r))
    indptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([p.size for p in parts], out=indptr[1:])
    items = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return indptr, items


def linear_pair_scores(
    baskets: tuple[np.ndarray, np.ndarray],
    weights: np.ndarray | sp.csr_matrix,
    query_of: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """sum_b W[b, cols[i]] over the items b of basket ``query_of[i]`` (``baskets`` as
    ``basket_lists`` gives them, in W's index space); ``cols`` < 0 (item unknown to the model)
    score 0."""
    indptr, basket_items = baskets
    query_of = np.asarray(query_of, np.int64)
    cols = np.asarray(cols, np.int64)
    out = np.zeros(cols.size, np.float32)
    ok = np.flatnonzero(cols >= 0)
    if not ok.size:
        return out
    if (
        sp.issparse(weights)
        and len(indptr) - 1 <= SMALL_PAIR_BATCH
        and weights.has_canonical_format  # type: ignore[union-attr]
    ):
        out[ok] = _sparse_row_sums((indptr, basket_items), weights, query_of[ok], cols[ok]).astype(
            np.float32
        )
        return out
    counts = (indptr[query_of[ok] + 1] - indptr[query_of[ok]]).astype(np.int64)
    total = int(counts.sum())
    if not total:
        return out
    pair = np.repeat(np.arange(ok.size), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    items = basket_items[np.repeat(indptr[query_of[ok]], counts) + offset]
    c = np.repeat(cols[ok], counts)
    if sp.issparse(weights):
        vals = np.asarray(weights[items, c], dtype=np.float64).ravel()
    else:
        vals = np.asarray(weights[items, c], dtype=np.float64)
    out[ok] = np.bincount(pair, weights=vals, minlength=ok.size).astype(np.float32)
    return out


def _sparse_row_sums(
    baskets: tuple[np.ndarray, np.ndarray],
    weights: sp.csr_matrix,
    query_of: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """(len(cols),) float64 sums of W[b, cols[i]] over basket ``query_of[i]``'s items, read
    from those items' rows of the CSR (sorted indices) by binary search."""
    indptr, basket_items = baskets
    ptr, indices, data = weights.indptr, weights.indices, weights.data
    acc = np.zeros(cols.size, np.float64)
    queries = np.unique(query_of)
    for q in queries.tolist():
        sel = None if queries.size == 1 else np.flatnonzero(query_of == q)
        c = cols if sel is None else cols[sel]
        part = np.zeros(c.size, np.float64)
        for b in basket_items[indptr[q] : indptr[q + 1]].tolist():
            lo, hi = int(ptr[b]), int(ptr[b + 1])
            if hi == lo:
                continue
            seg = indices[lo:hi]
            at = np.minimum(np.searchsorted(seg, c), hi - lo - 1)
            part += np.where(seg[at] == c, data[lo:hi][at], 0.0)
        if sel is None:
            acc = part
        else:
            acc[sel] = part
    return acc
