"""Scores of given (basket, item) pairs under a linear item-item model (EASE's B, RP3beta's W).

The generators propose their own top-k; the ranker also wants their opinion of candidates
*other* generators proposed (an item EASE ranks 300th still has a meaningful EASE score). For a
basket indicator row x and a weight matrix W the score of item c is x·W[:, c] = sum over the
basket's items b of W[b, c]: a gather and a sum per pair, vectorised over the whole batch.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import CandidateQuery


@runtime_checkable
class PairScorer(Protocol):
    """A generator that can score any candidate of a basket, not only those it proposed."""

    def score_pairs(
        self, queries: list[CandidateQuery], query_of: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) float32 score of catalog row ``rows[i]`` for basket ``queries[query_of[i]]``."""
        ...


def linear_pair_scores(
    baskets: sp.csr_matrix,
    weights: np.ndarray | sp.csr_matrix,
    query_of: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """sum_b W[b, cols[i]] over the items b of basket ``query_of[i]`` (rows of the binary
    ``baskets`` CSR, in W's index space); ``cols`` < 0 (item unknown to the model) score 0."""
    query_of = np.asarray(query_of, np.int64)
    cols = np.asarray(cols, np.int64)
    out = np.zeros(cols.size, np.float32)
    ok = np.flatnonzero(cols >= 0)
    if not ok.size:
        return out
    indptr = baskets.indptr
    counts = (indptr[query_of[ok] + 1] - indptr[query_of[ok]]).astype(np.int64)
    total = int(counts.sum())
    if not total:
        return out
    pair = np.repeat(np.arange(ok.size), counts)
    offset = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    items = baskets.indices[np.repeat(indptr[query_of[ok]], counts) + offset]
    c = np.repeat(cols[ok], counts)
    if sp.issparse(weights):
        vals = np.asarray(weights[items, c], dtype=np.float64).ravel()
    else:
        vals = np.asarray(weights[items, c], dtype=np.float64)
    out[ok] = np.bincount(pair, weights=vals, minlength=ok.size).astype(np.float32)
    return out
