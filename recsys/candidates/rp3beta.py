"""RP3beta: a three-step random walk item -> order -> item with a popularity penalty.

Paudel et al. (ACM TiiS 2017), in the formulation of Dacrema et al. (RecSys 2019, their
``RP3betaRecommender``): on the binarised orders x items matrix X (orders play the users),
P_ui = X row-normalised (order -> item transition probabilities) and P_iu = Xᵀ row-normalised
(item -> order); both are raised elementwise to the power ``alpha`` (P3alpha's sharpening of
the transition probabilities), W = P_iu @ P_ui, and each column j is divided by pop_j^beta
(pop_j = orders holding j) so the walk is not drawn to bestsellers. The diagonal is zeroed and
each row keeps its ``neighbours`` largest weights (a sparse CSR, O(n_items · neighbours)).
A basket is scored as x·W with x its binary indicator row. Nothing is random (no seed).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.co_purchase import keep_top_per_row
from recsys.candidates.pair_scores import BasketScores, basket_lists, linear_pair_scores
from recsys.candidates.topk import (
    check_k,
    empty_result,
    top_k_basket_sums,
)
from recsys.engine.inprocess import binary_orders

_PARAMS = ("alpha", "beta", "neighbours")
_BLOCK = 1024  # item rows of W computed at once (bounds the memory of the unpruned product)


def row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its sum (empty rows stay empty)."""
    m = sp.csr_matrix(m, dtype=np.float64, copy=True)
    sums = np.asarray(m.sum(axis=1)).ravel()
    m.data /= np.repeat(np.where(sums > 0, sums, 1.0), np.diff(m.indptr))
    return m


def rp3beta_weights(x: sp.csr_matrix, alpha: float, beta: float, neighbours: int) -> sp.csr_matrix:
    """W (n_items, n_items) float32 CSR from the binary orders x items ``x`` (see module doc)."""
    n = int(x.shape[1])
    p_ui = row_normalised(x)
    p_iu = row_normalised(x.T.tocsr())
    p_ui.data **= alpha
    p_iu.data **= alpha
    pop = np.diff(x.tocsc().indptr).astype(np.float64)
    penalty = np.zeros(n)
    np.power(pop, -beta, out=penalty, where=pop > 0)
    blocks = []
    for lo in range(0, n, _BLOCK):
        w = (p_iu[lo : lo + _BLOCK] @ p_ui).tocsr()
        w.sum_duplicates()
        w.data *= penalty[w.indices]
        rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr)) + lo
        w.data[w.indices == rows] = 0.0  # an item is not its own neighbour
        w.eliminate_zeros()
        blocks.append(keep_top_per_row(w, w.data, neighbours))
    if not blocks:
        return sp.csr_matrix((n, n), dtype=np.float32)
    out = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=np.float32)
    out.sort_indices()
    return out


class RP3betaCandidates(CandidateGenerator):
    """Basket -> items reached by short random walks through shared orders, popularity-penalised.

    Defaults (alpha 0.8, beta 0.4, 200 neighbours) were the best on the Online Retail validation
    window (``experiments/reports/ease``)."""

    name = "rp3beta"

    def __init__(self, alpha: float = 0.8, beta: float = 0.4, neighbours: int = 200) -> None:
        self.alpha = alpha
        self.beta = beta
        self.neighbours = neighbours

    def fit(self, data: TrainingData) -> Self:
        if not self.alpha > 0 or self.beta < 0 or self.neighbours < 1:
            raise ValueError(
                "RP3betaCandidates: alpha must be > 0, beta >= 0 and neighbours >= 1, got "
                f"alpha={self.alpha!r}, beta={self.beta!r}, neighbours={self.neighbours!r}"
            )
        self.weights_ = rp3beta_weights(
            binary_orders(data.orders), float(self.alpha), float(self.beta), int(self.neighbours)
        )
        return self

    @property
    def n_items(self) -> int:
        return int(self.weights_.shape[0])

    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) rows and scores x·W, best first, basket and ``exclude`` rows removed."""
        k = check_k(k)
        if not queries:
            return empty_result(0, k)
        return top_k_basket_sums(self.weights_, queries, k)

    def basket_scores(self, query: CandidateQuery) -> BasketScores:
        """The basket's summed walk weight to every item (``generate``'s scores for one basket)."""
        return BasketScores.of_sparse(self.weights_, query.rows)

    def score_pairs(
        self, queries: Sequence[CandidateQuery], query_of: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) x·W[:, row] for each (basket, row) pair (see ``recsys.candidates.pair_scores``)."""
        rows = np.asarray(rows, np.int64)
        cols = np.where((rows >= 0) & (rows < self.n_items), rows, -1)
        return linear_pair_scores(
            basket_lists(queries, self.n_items), self.weights_, query_of, cols
        )

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {k: getattr(self, k) for k in _PARAMS}
        (directory / "rp3beta.json").write_text(json.dumps(params, indent=2))
        sp.save_npz(directory / "weights.npz", self.weights_)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        self = cls(**json.loads((directory / "rp3beta.json").read_text()))
        self.weights_ = sp.csr_matrix(sp.load_npz(directory / "weights.npz"), dtype=np.float32)
        return self
