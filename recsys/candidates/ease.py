"""EASE: the closed-form linear item-item model of Steck (WWW 2019), as a candidate generator.

X is the binarised orders x items matrix (an item is in an order or not, as for item-kNN),
G = XᵀX + λI, P = G⁻¹ and B = -P / diag(P) column-wise with diag(B) = 0. A basket is scored as
x·B with x its binary indicator row, so each item gets the learned weight of every basket item.
Only the items bought at least once in training take part (the others have a zero column and
would tie at score 0); their rows are ``items_``.

Two ways to learn B, chosen by the number of bought items n against ``max_dense_items``:

* ``dense`` (n <= max_dense_items): the exact closed form, one in-place Cholesky inverse in
  float64. Cost O(n³) time and about 12·n² bytes at the peak (G/P in float64 + B in float32);
  serving keeps B as a dense float32 n x n (4·n² bytes per worker). Measured on the shared
  2-core, 24 GB development machine, one thread (``experiments/bench_ease.py``, report in
  ``experiments/reports/ease/``): 10k items 22 CPU s and 1.45 GB peak RSS, 15k items 67 CPU s
  and 3.0 GB; extrapolated, the fit stays under 10 CPU minutes up to ~30k items and under
  16 GB up to ~36k. Serving memory binds first: B is 0.9 GB per worker at 15k items, 1.6 GB at
  20k, 10 GB at 50k. Hence the default threshold of 15k bought items (about 1 GB per worker).
* ``local`` (n > max_dense_items): the same EASE regression solved column by column on a
  neighbourhood. EASE's column j is exactly the ridge regression of item j on all other items,
  B[:, j] = (G₋ⱼ,₋ⱼ + λI)⁻¹ G₋ⱼ,ⱼ (the diagonal constraint is what removes j), so restricting
  the regressors to the ``neighbours`` items most often bought with j gives a sparse B with at
  most ``neighbours`` entries per column, fitted in O(n·K³) time and O(nnz(XᵀX) + n·K) memory,
  and served as a sparse matrix like item-kNN's. We chose it over "dense EASE on the head +
  kNN for the tail" because it is one model with one score scale (no blending of two score
  distributions in the merge), it equals the dense model when the neighbourhood holds every
  co-bought item of a fully connected catalogue (tested), and it degrades gracefully: what it
  drops are the indirect weights of items never bought with j. On Online Retail's test window
  (3.3k bought items, both fit) it matched the dense model: Recall@10 0.292 (200 neighbours)
  and 0.286 (100) vs 0.288 dense, with 76% / 73% of the dense top-10 in common.

Nothing is random, so there is no seed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recsys.candidates.base import PAD_ROW, CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.co_purchase import keep_top_per_row
from recsys.candidates.pair_scores import (
    BasketScores,
    basket_lists,
    linear_pair_scores,
    top_k_of,
)
from recsys.candidates.topk import (
    SMALL_BATCH,
    basket_row_sums,
    check_k,
    empty_result,
    excluded_rows,
    top_k_dense,
    top_k_sparse,
)

log = logging.getLogger(__name__)

_PARAMS = ("l2", "max_dense_items", "neighbours")
_SCORE_CELLS = 1 << 22  # dense scores computed per chunk of queries (~16 MB of float32)


def ease_dense(g: np.ndarray, l2: float, block: int = 1024) -> np.ndarray:
    """B of EASE from the dense Gram matrix ``g`` (n, n) float64, which is overwritten.

    P = (g + l2·I)⁻¹ by Cholesky in place (the symmetric C-ordered buffer is also a valid
    Fortran-ordered one, so LAPACK needs no copy), then B = -P / diag(P) with diag(B) = 0.
    Returns B as float32 (n, n); peak memory about 12·n² bytes.
    """
    n = g.shape[0]
    if n == 0:
        return np.zeros((0, 0), np.float32)
    g[np.diag_indices(n)] += l2
    f = g.T  # Fortran-contiguous view of the same buffer
    c, info = lapack.dpotrf(f, lower=False, clean=False, overwrite_a=True)
    if info != 0:
        raise ValueError(
            f"EASE: XᵀX + l2·I is not positive definite (LAPACK info {info}); use l2 > 0"
        )
    p, info = lapack.dpotri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise ValueError(f"EASE: inverting XᵀX + l2·I failed (LAPACK info {info})")
    if not np.shares_memory(p, g):  # LAPACK copied after all: keep working on its result
        g = np.ascontiguousarray(p.T)
    # P sits in the upper triangle of the Fortran view = the lower triangle of g: mirror it
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        g[lo:hi, hi:] = g[hi:, lo:hi].T
        d = g[lo:hi, lo:hi]
        d[...] = np.tril(d) + np.tril(d, -1).T
    diag = np.diag(g).copy()
    np.divide(g, -diag[None, :], out=g)
    np.fill_diagonal(g, 0.0)
    return g.astype(np.float32)


def ease_local(
    g: sp.csr_matrix, l2: float, neighbours: int, max_union: int = 3000, max_block: int = 128
) -> sp.csr_matrix:
    """Sparse B: each column j is EASE's ridge regression of item j restricted to the
    ``neighbours`` items most often bought with it (ties -> smaller row). (n, n) float32 CSR.

    Items are solved in blocks that share neighbours (grouped by their strongest partner): the
    Gram entries among a block's union of neighbourhoods (at most ``max_union`` items) are
    gathered once as a dense matrix, and the block's systems are solved in one batched call
    (padded with identity rows, which give zero weights).
    """
    n = int(g.shape[1])
    g = sp.csr_matrix(g, dtype=np.float64)
    g.sort_indices()
    off = g.copy()
    off.setdiag(0.0)
    off.eliminate_zeros()
    top = keep_top_per_row(off, off.data, neighbours)  # row j: j's regressors and G[j, N]
    sizes = np.diff(top.indptr)
    strongest = np.asarray(off.argmax(axis=1)).ravel()
    order = np.lexsort((np.arange(n), strongest))
    order = order[sizes[order] > 0]
    in_union = np.zeros(n, dtype=bool)
    pos = np.full(n, -1, dtype=np.int64)
    out_rows: list[np.ndarray] = []
    out_cols: list[np.ndarray] = []
    out_vals: list[np.ndarray] = []

    def solve_block(items: list[int]) -> None:
        union = np.flatnonzero(in_union)
        in_union[union] = False
        sub = g[union]
        pos[union] = np.arange(union.size)
        cols = pos[sub.indices]
        rows = np.repeat(np.arange(union.size), np.diff(sub.indptr))
        keep = cols >= 0
        dense = np.zeros((union.size, union.size), dtype=np.float64)
        dense[rows[keep], cols[keep]] = sub.data[keep]
        pos[union] = -1
        width = int(sizes[items].max())
        a = np.zeros((len(items), width, width), dtype=np.float64)
        rhs = np.zeros((len(items), width, 1), dtype=np.float64)
        a[:, np.arange(width), np.arange(width)] = 1.0  # padding: identity rows, zero weights
        for i, j in enumerate(items):
            lo, hi = top.indptr[j], top.indptr[j + 1]
            p = np.searchsorted(union, top.indices[lo:hi])
            m = p.size
            a[i, :m, :m] = dense[np.ix_(p, p)]
            a[i, np.arange(m), np.arange(m)] += l2
            rhs[i, :m, 0] = top.data[lo:hi]
        b = np.linalg.solve(a, rhs)[:, :, 0]
        for i, j in enumerate(items):
            lo, hi = top.indptr[j], top.indptr[j + 1]
            out_rows.append(top.indices[lo:hi].astype(np.int64))
            out_cols.append(np.full(hi - lo, j, dtype=np.int64))
            out_vals.append(b[i, : hi - lo].astype(np.float32))

    block: list[int] = []
    count = done = 0
    for j in order:
        nb = top.indices[top.indptr[j] : top.indptr[j + 1]]
        new = nb[~in_union[nb]]
        if block and (count + new.size > max_union or len(block) >= max_block):
            solve_block(block)
            done += len(block)
            if done * 10 // order.size != (done - len(block)) * 10 // order.size:
                log.info("EASE local: %d / %d items solved", done, order.size)
            block, count = [], 0
            new = nb
        in_union[new] = True
        count += new.size
        block.append(int(j))
    if block:
        solve_block(block)
    if not out_rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    b_mat = sp.csr_matrix(
        (np.concatenate(out_vals), (np.concatenate(out_rows), np.concatenate(out_cols))),
        shape=(n, n),
        dtype=np.float32,
    )
    b_mat.sort_indices()
    return b_mat


class EASECandidates(CandidateGenerator):
    """Basket -> items with the largest EASE score x·B (dense closed form, or local above
    ``max_dense_items`` bought items).

    ``l2`` = 30 was the best λ on the Online Retail validation window (flat from 20 to 100;
    ``experiments/reports/ease``); λ acts against item counts, so larger data wants larger λ.
    ``neighbours`` only matters for the local variant."""

    name = "ease"

    def __init__(
        self, l2: float = 30.0, max_dense_items: int = 15_000, neighbours: int = 200
    ) -> None:
        self.l2 = l2
        self.max_dense_items = max_dense_items
        self.neighbours = neighbours

    # ------------------------------------------------------------------- fit
    def fit(self, data: TrainingData) -> Self:
        if not self.l2 > 0:
            raise ValueError(f"EASECandidates: l2 must be > 0, got {self.l2!r}")
        if self.max_dense_items < 0 or self.neighbours < 1:
            raise ValueError("EASECandidates: max_dense_items must be >= 0 and neighbours >= 1")
        agg = data.order_aggregates()  # binary XᵀX, in process or from a Spark engine
        self.n_items_ = agg.n_items
        self.items_ = np.flatnonzero(agg.item_orders > 0).astype(np.int64)
        gram = agg.pairs_among(self.items_)
        if self.items_.size <= self.max_dense_items:
            self.variant_ = "dense"
            dense = gram if isinstance(gram, np.ndarray) else gram.toarray()
            self.weights_: np.ndarray | sp.csr_matrix = ease_dense(dense, float(self.l2))
        else:
            self.variant_ = "local"
            self.weights_ = ease_local(sp.csr_matrix(gram), float(self.l2), int(self.neighbours))
        self._index()
        return self

    def _index(self) -> None:
        self.pos_ = np.full(self.n_items_, -1, dtype=np.int64)
        self.pos_[self.items_] = np.arange(self.items_.size)

    @property
    def n_items(self) -> int:
        return int(self.n_items_)

    # --------------------------------------------------------------- generate
    def _active_baskets(self, queries: Sequence[CandidateQuery]) -> tuple[np.ndarray, np.ndarray]:
        """Each query's basket in ``items_`` positions, ascending, as ``(indptr, positions)``
        (rows outside the catalogue or never bought are dropped)."""
        return basket_lists(queries, self.n_items_, self.pos_)

    def _basket_csr(self, queries: Sequence[CandidateQuery]) -> sp.csr_matrix:
        """The same baskets as a binary (n_queries, n_bought_items) CSR (batch scoring)."""
        indptr, flat = self._active_baskets(queries)
        return sp.csr_matrix(
            (np.ones(flat.size, np.float32), flat, indptr), shape=(len(queries), self.items_.size)
        )

    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) rows and scores x·B, best first, basket and ``exclude`` rows removed; a basket
        with no bought item gets no candidates."""
        k = check_k(k)
        if not queries:
            return empty_result(0, k)
        if len(queries) <= SMALL_BATCH:
            return self._generate_small(queries, k)
        baskets = self._basket_csr(queries)
        if isinstance(self.weights_, sp.csr_matrix):
            scored = (baskets @ self.weights_).tocsr()
            scored.indices = self.items_[scored.indices]  # back to catalog rows
            scored = sp.csr_matrix(
                (scored.data, scored.indices, scored.indptr), shape=(len(queries), self.n_items_)
            )
            return top_k_sparse(scored, queries, k)
        out_rows, out_scores = empty_result(len(queries), k)
        step = max(1, _SCORE_CELLS // max(self.items_.size, 1))
        for lo in range(0, len(queries), step):
            hi = min(lo + step, len(queries))
            chunk = baskets[lo:hi]
            scores = np.asarray(chunk @ self.weights_, dtype=np.float32)
            scores[np.diff(chunk.indptr) == 0] = -np.inf
            qi, cols = self._excluded_cells(queries[lo:hi])
            scores[qi, cols] = -np.inf
            cols_k, out_scores[lo:hi] = top_k_dense(scores, k)
            out_rows[lo:hi] = np.where(cols_k >= 0, self.items_[np.maximum(cols_k, 0)], PAD_ROW)
        return out_rows, out_scores

    def _generate_small(
        self, queries: Sequence[CandidateQuery], k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``generate`` for a few baskets (serving), from each basket's ``basket_scores``: the
        same scores as the batch path, without a CSR per request."""
        return top_k_of([self.basket_scores(q) for q in queries], queries, k)

    def basket_scores(self, query: CandidateQuery) -> BasketScores:
        """x·B over the bought items, from the basket items' rows of B only: float32 additions
        from zero in row order, as the sparse product adds them. A basket with no bought item
        scores nothing (no candidates, like the dense path's all -inf row)."""
        indptr, basket = self._active_baskets([query])
        if not basket.size:
            return BasketScores(np.empty(0, np.int64), np.empty(0, np.float32))
        if isinstance(self.weights_, sp.csr_matrix):
            cols, sums = basket_row_sums(self.weights_, basket)
            return BasketScores(self.items_[cols], sums.astype(np.float32, copy=False))
        scores = np.zeros(self.items_.size, np.float32)
        for b in basket.tolist():
            scores += self.weights_[b]
        return BasketScores(self.items_, scores)

    def score_pairs(
        self, queries: Sequence[CandidateQuery], query_of: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) x·B[:, row] for each (basket, row) pair: EASE's opinion of candidates
        other generators proposed (0 for items never bought in training)."""
        rows = np.asarray(rows, np.int64)
        cols = np.where(
            (rows >= 0) & (rows < self.n_items_), self.pos_[np.clip(rows, 0, self.n_items_ - 1)], -1
        )
        return linear_pair_scores(self._active_baskets(queries), self.weights_, query_of, cols)

    def _excluded_cells(self, queries: Sequence[CandidateQuery]) -> tuple[np.ndarray, np.ndarray]:
        """(query index, position in ``items_``) of every basket / exclude row of ``queries``."""
        rows = [excluded_rows(q) for q in queries]
        qi = np.repeat(np.arange(len(queries)), [r.size for r in rows])
        flat = np.concatenate(rows) if rows else np.empty(0, np.int64)
        ok = (flat >= 0) & (flat < self.n_items_)
        qi, flat = qi[ok], self.pos_[flat[ok]]
        return qi[flat >= 0], flat[flat >= 0]

    # ------------------------------------------------------------- save/load
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {k: getattr(self, k) for k in _PARAMS}
        (directory / "ease.json").write_text(json.dumps(params, indent=2))
        arrays: dict[str, np.ndarray] = {
            "items": self.items_,
            "n_items": np.asarray(self.n_items_, np.int64),
        }
        if isinstance(self.weights_, sp.csr_matrix):
            arrays |= {
                "data": self.weights_.data,
                "indices": self.weights_.indices,
                "indptr": self.weights_.indptr,
            }
        else:
            arrays["dense"] = self.weights_
        np.savez(directory / "ease.npz", **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        self = cls(**json.loads((directory / "ease.json").read_text()))
        with np.load(directory / "ease.npz", allow_pickle=False) as z:
            self.items_ = z["items"].astype(np.int64)
            self.n_items_ = int(z["n_items"])
            n = self.items_.size
            if "dense" in z.files:
                self.variant_ = "dense"
                self.weights_ = np.ascontiguousarray(z["dense"], dtype=np.float32)
            else:
                self.variant_ = "local"
                self.weights_ = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(n, n))
        self._index()
        return self
