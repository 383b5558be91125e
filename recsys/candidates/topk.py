"""Top-k selection with exclusions and padding: the last step every generator shares.

Generators score some items per query; this module turns (rows, scores) into the contract's
``(k,)`` row/score pair: best first, excluded rows removed, padded with ``PAD_ROW`` / ``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import PAD_ROW, CandidateQuery


def excluded_rows(query: CandidateQuery) -> np.ndarray:
    """Rows a query must never get back: its basket plus its ``exclude`` list, shape (e,)."""
    rows = np.asarray(query.rows, dtype=np.int64).ravel()
    exclude = np.asarray(query.exclude, dtype=np.int64).ravel()
    if exclude.size == 0:
        return rows
    return np.concatenate([rows, exclude])


SMALL_EXCLUDE = 32  # up to this many excluded rows, compare directly instead of np.isin
LOOP_EXCLUDE = 4  # up to this many, one comparison each; above, a binary search
SMALL_BATCH = 16  # up to this many queries, sum similarity rows per query instead of a CSR product


def not_in(rows: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """(len(rows),) bool: ``~np.isin(rows, exclude)``, without np.isin's set-up cost for the
    handful of rows a basket excludes (the common case on the serving path)."""
    if exclude.size > SMALL_EXCLUDE:
        return ~np.isin(rows, exclude)
    if exclude.size > LOOP_EXCLUDE:
        s = np.sort(exclude)
        at = np.minimum(np.searchsorted(s, rows), s.size - 1)
        out: np.ndarray = s[at] != rows
        return out
    keep = np.ones(rows.shape, dtype=bool)
    for e in exclude.tolist():
        keep &= rows != e
    return keep


def empty_result(n_queries: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded (n_queries, k) rows (int64, PAD_ROW) and scores (float32, -inf)."""
    return (
        np.full((n_queries, k), PAD_ROW, dtype=np.int64),
        np.full((n_queries, k), -np.inf, dtype=np.float32),
    )


def top_k(
    rows: np.ndarray, scores: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` of ``rows`` (m,) by ``scores`` (m,), dropping ``exclude`` and non-finite scores.

    Ties are broken by the smaller row so that the output is deterministic. Returns (k,) int64
    rows and (k,) float32 scores, padded.
    """
    out_rows = np.full(k, PAD_ROW, dtype=np.int64)
    out_scores = np.full(k, -np.inf, dtype=np.float32)
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    keep = np.isfinite(scores) & (rows >= 0)
    if exclude is not None and len(exclude):
        keep &= not_in(rows, np.asarray(exclude, dtype=np.int64))
    rows, scores = rows[keep], scores[keep]
    if rows.size == 0 or k <= 0:
        return out_rows, out_scores
    if rows.size > k:
        # argpartition on the k-th best, then an exact ordered sort of the survivors
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        part = np.flatnonzero(scores >= threshold)
        rows, scores = rows[part], scores[part]
    order = np.lexsort((rows, -scores))[:k]
    n = order.size
    out_rows[:n] = rows[order]
    out_scores[:n] = scores[order]
    return out_rows, out_scores


def basket_matrix(queries: Sequence[CandidateQuery], n_items: int) -> sp.csr_matrix:
    """Queries' baskets as a binary (n_queries, n_items) CSR (unknown rows >= n_items dropped)."""
    indptr = [0]
    indices: list[np.ndarray] = []
    for q in queries:
        r = np.unique(np.asarray(q.rows, dtype=np.int64))
        r = r[(r >= 0) & (r < n_items)]
        indices.append(r)
        indptr.append(indptr[-1] + r.size)
    idx = np.concatenate(indices) if indices else np.empty(0, np.int64)
    data = np.ones(idx.size, dtype=np.float32)
    return sp.csr_matrix(
        (data, idx, np.asarray(indptr, dtype=np.int64)), shape=(len(queries), n_items)
    )


def basket_row_sums(matrix: sp.csr_matrix, basket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (1, n_items) row ``basket_matrix([basket]) @ matrix`` as (columns, sums), computed from
    the basket's rows of ``matrix`` only: the same float additions in the same order as
    scipy's CSR product (rows ascending, accumulated in the product's dtype, zero sums
    dropped), so the values are bit-identical, without building a CSR per request."""
    r = np.unique(np.asarray(basket, dtype=np.int64))
    r = r[(r >= 0) & (r < matrix.shape[0])]
    dtype = np.result_type(np.float32, matrix.dtype)
    if r.size == 0:
        return np.empty(0, np.int64), np.empty(0, dtype)
    ptr = matrix.indptr
    if r.size == 1:
        lo, hi = ptr[r[0]], ptr[r[0] + 1]
        cols, sums = matrix.indices[lo:hi].astype(np.int64), matrix.data[lo:hi].astype(dtype)
    else:
        cols_all = np.concatenate([matrix.indices[ptr[i] : ptr[i + 1]] for i in r.tolist()])
        data_all = np.concatenate([matrix.data[ptr[i] : ptr[i + 1]] for i in r.tolist()]).astype(
            dtype
        )
        cols, inv = np.unique(cols_all, return_inverse=True)
        sums = np.zeros(cols.size, dtype)
        np.add.at(sums, inv, data_all)  # sequential, in basket-row order, like scipy's sums[k] += v
        cols = cols.astype(np.int64)
    nz = sums != 0
    return cols[nz], sums[nz]


def top_k_basket_sums(
    matrix: sp.csr_matrix, queries: Sequence[CandidateQuery], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """``top_k_sparse(basket_matrix(queries) @ matrix, queries, k)``: per query from the basket's
    rows for small batches (serving), one sparse product for large ones (training)."""
    if len(queries) > SMALL_BATCH:
        return top_k_sparse(basket_matrix(queries, matrix.shape[0]) @ matrix, queries, k)
    out_rows, out_scores = empty_result(len(queries), k)
    for i, q in enumerate(queries):
        cols, sums = basket_row_sums(matrix, q.rows)
        out_rows[i], out_scores[i] = top_k(cols, sums, k, excluded_rows(q))
    return out_rows, out_scores


def top_k_sparse(
    scored: sp.csr_matrix, queries: Sequence[CandidateQuery], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise ``top_k`` of a (n_queries, n_items) CSR of scores, honouring each exclusion."""
    out_rows, out_scores = empty_result(len(queries), k)
    scored = scored.tocsr()
    for i, q in enumerate(queries):
        lo, hi = scored.indptr[i], scored.indptr[i + 1]
        out_rows[i], out_scores[i] = top_k(
            scored.indices[lo:hi], scored.data[lo:hi], k, excluded_rows(q)
        )
    return out_rows, out_scores


def check_k(k: int) -> int:
    """``k`` as an int >= 0, or a ValueError naming the problem."""
    if isinstance(k, bool) or int(k) != k or k < 0:
        raise ValueError(f"k must be a whole number >= 0, got {k!r}")
    return int(k)


def top_k_dense(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise best ``k`` columns of a dense (n, m) score matrix, vectorised.

    Non-finite scores are never returned (callers set excluded cells to ``-inf``). Ties are
    broken by the smaller column, as in ``top_k``, so a row's answer does not depend on the
    other rows of the batch. Returns (n, k) int64 columns and float32 scores, padded.
    """
    n, m = scores.shape
    out_cols, out_scores = empty_result(n, k)
    if n == 0 or m == 0 or k <= 0:
        return out_cols, out_scores
    scores = np.asarray(scores, dtype=np.float32)
    finite = np.isfinite(scores)
    if k < m:
        kth = -np.partition(-np.where(finite, scores, -np.inf), k - 1, axis=1)[:, k - 1]
        above = finite & (scores > kth[:, None])
        tied = finite & (scores == kth[:, None])
        room = k - above.sum(axis=1)
        keep = above | (tied & (np.cumsum(tied, axis=1) <= room[:, None]))
    else:
        keep = finite
    qi, cols = np.nonzero(keep)  # row-major: ascending column within each row
    vals = scores[qi, cols]
    order = np.lexsort((cols, -vals, qi))  # by row, best first, ties -> smaller column
    qi, cols, vals = qi[order], cols[order], vals[order]
    starts = np.r_[0, np.cumsum(np.bincount(qi, minlength=n))][:-1]
    rank = np.arange(qi.size) - starts[qi]
    out_cols[qi, rank] = cols
    out_scores[qi, rank] = vals
    return out_cols, out_scores
