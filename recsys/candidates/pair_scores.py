"""Scores of given (basket, item) pairs under a linear item-item model (EASE's B, RP3beta's W).

The generators propose their own top-k; the ranker also wants their opinion of candidates
*other* generators proposed (an item EASE ranks 300th still has a meaningful EASE score). For a
basket indicator row x and a weight matrix W the score of item c is x·W[:, c] = sum over the
basket's items b of W[b, c]: a gather and a sum per pair, vectorised over the whole batch.

On the serving path the generator computes each basket's whole score row once
(``BasketScores``: x·W over every item W scores) and the same row answers both the generator's
own top-k and the ranker's question about every other candidate: one lookup per candidate
instead of a second pass over the basket's rows of W. Batches too large for that (training,
batch scoring) gather W[b, c] per pair. Every path adds a pair's values in the product's dtype
(float32 for these models), basket items ascending, from zero: the order scipy's CSR product
adds them, so the scores are bit-identical whichever path computed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import CandidateQuery
from recsys.candidates.topk import basket_row_sums, empty_result, excluded_rows, top_k

SMALL_PAIR_BATCH = 16  # up to this many baskets, score whole basket rows once (serving)


@dataclass(frozen=True)
class BasketScores:
    """One basket's score x·W for every catalog row a linear item-item model scores (``rows``
    ascending); every other row scores 0."""

    rows: np.ndarray  # (m,) int64 catalog rows, ascending
    values: np.ndarray  # (m,) float32

    @classmethod
    def of_sparse(cls, weights: sp.csr_matrix, basket: np.ndarray) -> BasketScores:
        """The row ``x·W`` of a square CSR over catalog rows (zero sums dropped)."""
        cols, sums = basket_row_sums(weights, basket)
        return cls(cols, sums.astype(np.float32, copy=False))

    def top_k(self, k: int, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The generator's answer: best ``k`` rows and scores, ``exclude`` dropped, padded."""
        return top_k(self.rows, self.values, k, exclude)

    def at(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows),) float32 scores of ``rows`` (0 where the model gives none)."""
        rows = np.asarray(rows, np.int64)
        if not self.rows.size:
            return np.zeros(rows.size, np.float32)
        i = np.minimum(np.searchsorted(self.rows, rows), self.rows.size - 1)
        out: np.ndarray = np.where(self.rows[i] == rows, self.values[i], np.float32(0))
        return out.astype(np.float32, copy=False)


@runtime_checkable
class PairScorer(Protocol):
    """A generator that can score any candidate of a basket, not only those it proposed."""

    def basket_scores(self, query: CandidateQuery) -> BasketScores:
        """The basket's whole score row (what ``generate`` ranks for a few baskets)."""
        ...

    def score_pairs(
        self, queries: list[CandidateQuery], query_of: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) float32 score of catalog row ``rows[i]`` for basket ``queries[query_of[i]]``."""
        ...


def top_k_of(
    scores: Sequence[BasketScores], queries: Sequence[CandidateQuery], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(n, k) rows and scores: each basket's ``BasketScores.top_k``, its basket and ``exclude``
    rows removed."""
    out_rows, out_scores = empty_result(len(queries), k)
    for i, (s, q) in enumerate(zip(scores, queries, strict=True)):
        out_rows[i], out_scores[i] = s.top_k(k, excluded_rows(q))
    return out_rows, out_scores


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
    dtype = np.result_type(np.float32, weights.dtype)
    vals = np.asarray(weights[items, c], dtype=dtype).ravel()
    sums = np.zeros(ok.size, dtype)
    np.add.at(sums, pair, vals)  # sequential, basket items ascending per pair, like scipy
    out[ok] = sums.astype(np.float32)
    return out


def _sparse_row_sums(
    baskets: tuple[np.ndarray, np.ndarray],
    weights: sp.csr_matrix,
    query_of: np.ndarray,
    cols: np.ndarray,
) -> np.ndarray:
    """(len(cols),) sums of W[b, cols[i]] over basket ``query_of[i]``'s items, read from those
    items' rows of the CSR (sorted indices) by binary search."""
    indptr, basket_items = baskets
    ptr, indices, data = weights.indptr, weights.indices, weights.data
    dtype = np.result_type(np.float32, data.dtype)
    acc = np.zeros(cols.size, dtype)
    queries = np.unique(query_of)
    for q in queries.tolist():
        sel = None if queries.size == 1 else np.flatnonzero(query_of == q)
        c = cols if sel is None else cols[sel]
        part = np.zeros(c.size, dtype)
        for b in basket_items[indptr[q] : indptr[q + 1]].tolist():
            lo, hi = int(ptr[b]), int(ptr[b + 1])
            if hi == lo:
                continue
            seg = indices[lo:hi]
            at = np.minimum(np.searchsorted(seg, c), hi - lo - 1)
            part += np.where(seg[at] == c, data[lo:hi][at], dtype.type(0))
        if sel is None:
            acc = part
        else:
            acc[sel] = part
    return acc
