"""Frequently bought together: item->item association and category->category complements.

From the binarised orders x items matrix X (n_orders, n_items):
  pair counts  C = X^T X (sparse), item counts c_i, N orders;
  lift(i, j) = C_ij N / (c_i c_j);  npmi(i, j) = log(p_ij / (p_i p_j)) / -log(p_ij).
Pairs seen in fewer than ``min_support`` orders are dropped (a single shared order gives a
huge, meaningless lift); each item keeps its ``max_neighbours`` best partners, so memory is
O(n_items * max_neighbours) even at 50k+ items. NPMI is the default ranking score: leaving one
item out of held-out orders, HR@50 was 0.29 (NPMI) vs 0.18 (lift) on the sample world and
0.175 vs 0.113 on Online Retail - lift over-rewards rare pairs. ``item_lift`` is lift either way.

Category complements: ``category_complements_[a, b] = max(0, P(b | a) - P(b))`` for a != b,
the probability an order with category a also holds category b *beyond* b's base rate (the
"added value" form of lift: it is a probability like P(b|a), yet a category that is in every
order - light bulbs - gets ~0, so tile asks for grout, not for whatever is popular).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.topk import (
    basket_matrix,
    check_k,
    empty_result,
    top_k_basket_sums,
    top_k_sparse,
)
from recsys.engine.aggregates import OrderAggregates

Score = Literal["lift", "npmi"]


def keep_top_per_row(m: sp.csr_matrix, by: np.ndarray, n: int) -> sp.csr_matrix:
    """Keep the ``n`` entries of each CSR row with the largest ``by`` (aligned with ``m.data``)."""
    m = m.tocsr()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((m.indices, -by, row))  # by row, best first, ties -> smaller column
    rank = np.arange(order.size) - m.indptr[row[order]]
    keep = np.sort(order[rank < n])
    indptr = np.r_[0, np.cumsum(np.bincount(row[keep], minlength=m.shape[0]))]
    out = sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)
    out.sort_indices()
    return out


class CoPurchaseCandidates(CandidateGenerator):
    """Basket -> items bought with its items more often than chance (lift or NPMI)."""

    name = "co_purchase"

    def __init__(
        self,
        min_support: int = 2,
        score: Score = "npmi",
        max_neighbours: int = 200,
        aggregate: Literal["sum", "max"] = "sum",
    ) -> None:
        self.min_support = min_support
        self.score = score
        self.max_neighbours = max_neighbours
        self.aggregate = aggregate

    # ------------------------------------------------------------------- fit
    def fit(self, data: TrainingData) -> Self:
        if self.score not in ("lift", "npmi"):
            raise ValueError(
                f"CoPurchaseCandidates: score must be 'lift' or 'npmi', got {self.score!r}"
            )
        if self.aggregate not in ("sum", "max"):
            raise ValueError(
                f"CoPurchaseCandidates: aggregate must be 'sum' or 'max', got {self.aggregate!r}"
            )
        if self.min_support < 1 or self.max_neighbours < 1:
            raise ValueError("CoPurchaseCandidates: min_support and max_neighbours must be >= 1")
        agg = data.order_aggregates()  # binary XᵀX, in process or from a Spark engine
        self.n_orders_ = agg.n_orders
        self.item_counts_ = agg.item_orders.astype(np.float64)
        pairs = sp.csr_matrix(agg.item_pairs(), dtype=np.float32)
        pairs.setdiag(0.0)
        pairs.eliminate_zeros()
        pairs.data[pairs.data < self.min_support] = 0.0
        pairs.eliminate_zeros()
        pairs = keep_top_per_row(pairs, self._association(pairs), self.max_neighbours)
        self.pair_counts_ = sp.csr_matrix(pairs, dtype=np.float32)
        scores = self.pair_counts_.copy()
        scores.data = self._association(self.pair_counts_).astype(np.float32)
        self.scores_ = scores
        self._fit_categories(agg, np.asarray(data.item_category, dtype=np.int64))
        return self

    def _association(self, pairs: sp.csr_matrix) -> np.ndarray:
        """Lift or NPMI of every stored pair, aligned with ``pairs.data``."""
        rows = np.repeat(np.arange(pairs.shape[0]), np.diff(pairs.indptr))
        return self._pair_score(pairs.data.astype(np.float64), rows, pairs.indices, self.score)

    def _pair_score(
        self, counts: np.ndarray, a: np.ndarray, b: np.ndarray, score: str
    ) -> np.ndarray:
        n = float(self.n_orders_)
        lift = counts * n / (self.item_counts_[a] * self.item_counts_[b])
        if score == "lift":
            out: np.ndarray = lift
            return out
        p_ab = counts / n
        with np.errstate(divide="ignore", invalid="ignore"):
            npmi = np.log(lift) / -np.log(p_ab)
        return np.where(p_ab >= 1.0, 1.0, npmi)

    def _fit_categories(self, agg: OrderAggregates, item_category: np.ndarray) -> None:
        if item_category.shape != (agg.n_items,):
            raise ValueError(
                f"CoPurchaseCandidates: item_category must have shape ({agg.n_items},), got {item_category.shape}"
            )
        self.item_category_ = item_category
        n_cat = (
            int(item_category.max()) + 1 if item_category.size and item_category.max() >= 0 else 0
        )
        self.n_categories_ = n_cat
        if n_cat == 0:
            self.category_conditional_ = np.zeros((0, 0), np.float32)
            self.category_lift_ = np.zeros((0, 0), np.float32)
            self.category_complements_ = np.zeros((0, 0), np.float32)
            return
        together = agg.category_pairs.astype(np.float64)  # (n_cat, n_cat) orders with a and b
        count = np.diag(together).copy()
        n = max(self.n_orders_, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = np.where(count[:, None] > 0, together / count[:, None], 0.0)  # P(b | a)
            base = count / n  # P(b)
            lift = np.where(base[None, :] > 0, cond / base[None, :], 0.0)
        comp = np.clip(cond - base[None, :], 0.0, None)
        np.fill_diagonal(comp, 0.0)
        self.category_counts_ = count
        self.category_conditional_ = cond.astype(np.float32)
        self.category_lift_ = lift.astype(np.float32)
        self.category_complements_ = comp.astype(np.float32)

    @property
    def n_items(self) -> int:
        return int(self.scores_.shape[0])

    # --------------------------------------------------------------- generate
    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k): items scored by the sum (or max) of their association with the basket."""
        k = check_k(k)
        if not queries:
            return empty_result(0, k)
        if self.aggregate == "sum":
            return top_k_basket_sums(self.scores_, queries, k)
        baskets = basket_matrix(queries, self.n_items)
        scored = []
        for i in range(len(queries)):
            sub = self.scores_[baskets.indices[baskets.indptr[i] : baskets.indptr[i + 1]]]
            scored.append(
                sp.csr_matrix(sub.max(axis=0)) if sub.shape[0] else sp.csr_matrix((1, self.n_items))
            )
        return top_k_sparse(sp.vstack(scored).tocsr(), queries, k)

    # ---------------------------------------------------------------- features
    def item_lift(
        self, basket_rows: np.ndarray, candidate_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lift of each candidate to the basket's items: (max (c,), mean (c,)) float32.

        A pair below ``min_support``, or kept as a neighbour by neither item, counts as 0 (no
        evidence).
        The mean is over the basket's distinct known items.
        """
        basket = np.unique(np.asarray(basket_rows, dtype=np.int64))
        basket = basket[(basket >= 0) & (basket < self.n_items)]
        cand = np.asarray(candidate_rows, dtype=np.int64)
        c = cand.size
        if basket.size == 0 or c == 0:
            return np.zeros(c, np.float32), np.zeros(c, np.float32)
        valid = (cand >= 0) & (cand < self.n_items)
        counts = np.zeros((basket.size, c), np.float64)
        # rows are pruned to each item's best partners, so look the pair up both ways
        forward = self.pair_counts_[basket][:, cand[valid]].toarray()
        backward = self.pair_counts_[cand[valid]][:, basket].toarray().T
        counts[:, valid] = np.maximum(forward, backward)
        a = np.repeat(basket, c).reshape(basket.size, c)
        b = np.broadcast_to(np.where(valid, cand, 0), (basket.size, c))
        lift = np.zeros_like(counts)
        nz = counts > 0
        lift[nz] = self._pair_score(counts[nz], a[nz], b[nz], "lift")
        return lift.max(axis=0).astype(np.float32), lift.mean(axis=0).astype(np.float32)

    def category_complement(
        self, basket_rows: np.ndarray, candidate_rows: np.ndarray
    ) -> np.ndarray:
        """(c,) float32: max over the basket's categories a of complements[a, category(candidate)]."""
        cand = np.asarray(candidate_rows, dtype=np.int64)
        out = np.zeros(cand.size, np.float32)
        cats = self.basket_categories(basket_rows)
        if cats.size == 0 or cand.size == 0:
            return out
        cand_cat = np.where(
            (cand >= 0) & (cand < self.n_items),
            self.item_category_[np.clip(cand, 0, self.n_items - 1)],
            -1,
        )
        ok = cand_cat >= 0
        out[ok] = self.category_complements_[cats][:, cand_cat[ok]].max(axis=0)
        return out

    def basket_categories(self, basket_rows: np.ndarray) -> np.ndarray:
        """Distinct known categories of the basket's items, (m,) int64."""
        rows = np.asarray(basket_rows, dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < self.n_items)]
        cats = self.item_category_[rows]
        return np.unique(cats[cats >= 0])

    def complementary_categories(self, basket_rows: np.ndarray) -> np.ndarray:
        """(n_categories,) complement score of every category for this basket (max over its
        categories), 0 for categories already in the basket."""
        scores = np.zeros(self.n_categories_, np.float32)
        cats = self.basket_categories(basket_rows)
        if cats.size:
            scores = self.category_complements_[cats].max(axis=0)
            scores[cats] = 0.0
        return scores

    # ------------------------------------------------------------ save / load
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {
            k: getattr(self, k) for k in ("min_support", "score", "max_neighbours", "aggregate")
        }
        params["n_orders_"] = self.n_orders_
        (directory / "co_purchase.json").write_text(json.dumps(params, indent=2))
        sp.save_npz(directory / "pair_counts.npz", self.pair_counts_)
        np.savez(
            directory / "co_purchase_arrays.npz",
            item_counts=self.item_counts_,
            item_category=self.item_category_,
            category_counts=getattr(self, "category_counts_", np.zeros(0)),
            category_conditional=self.category_conditional_,
            category_lift=self.category_lift_,
            category_complements=self.category_complements_,
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        params = json.loads((directory / "co_purchase.json").read_text())
        n_orders = params.pop("n_orders_")
        self = cls(**params)
        self.n_orders_ = int(n_orders)
        self.pair_counts_ = sp.csr_matrix(
            sp.load_npz(directory / "pair_counts.npz"), dtype=np.float32
        )
        with np.load(directory / "co_purchase_arrays.npz", allow_pickle=False) as z:
            self.item_counts_ = z["item_counts"]
            self.item_category_ = z["item_category"]
            self.category_counts_ = z["category_counts"]
            self.category_conditional_ = z["category_conditional"]
            self.category_lift_ = z["category_lift"]
            self.category_complements_ = z["category_complements"]
        self.n_categories_ = int(self.category_complements_.shape[0])
        scores = self.pair_counts_.copy()
        scores.data = self._association(self.pair_counts_).astype(np.float32)
        self.scores_ = scores
        return self
