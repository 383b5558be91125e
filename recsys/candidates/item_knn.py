"""Item-to-item neighbours with implicit's BM25 / TF-IDF / cosine models.

On basket data these are a strong, cheap signal. The models are fitted on the binarised
orders x items matrix (an item is in an order or not; quantities are too noisy to weigh). A
basket is scored as implicit scores a user row: the sum of the similarity rows of its items,
so an item similar to several basket items ranks higher. The (n_items, n_items) similarity
matrix (``K`` neighbours per item) is saved as a sparse ``.npz``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, TFIDFRecommender

from recsys.candidates.base import CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.pair_scores import BasketScores, basket_lists, linear_pair_scores
from recsys.candidates.topk import check_k, empty_result, top_k_basket_sums

Weighting = Literal["bm25", "tfidf", "cosine"]


class ItemKNNCandidates(CandidateGenerator):
    """Basket -> items most similar to its items (implicit item-item kNN)."""

    name = "item_knn"

    def __init__(
        self,
        weighting: Weighting = "bm25",
        K: int = 100,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int = 1,
    ) -> None:
        self.weighting = weighting
        self.K = K
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def _model(self) -> BM25Recommender | TFIDFRecommender | CosineRecommender:
        if self.weighting == "bm25":
            return BM25Recommender(
                K=self.K, K1=self.bm25_k1, B=self.bm25_b, num_threads=self.num_threads
            )
        if self.weighting == "tfidf":
            return TFIDFRecommender(K=self.K, num_threads=self.num_threads)
        if self.weighting == "cosine":
            return CosineRecommender(K=self.K, num_threads=self.num_threads)
        raise ValueError(
            f"ItemKNNCandidates: weighting must be bm25, tfidf or cosine, got {self.weighting!r}"
        )

    def fit(self, data: TrainingData) -> Self:
        model = self._model()
        if self.K < 1:
            raise ValueError(f"ItemKNNCandidates: K must be >= 1, got {self.K}")
        orders = sp.csr_matrix(data.orders, dtype=np.float32)
        orders.data[:] = 1.0
        orders.eliminate_zeros()
        with warnings.catch_warnings():
            # implicit's weighting hands its own kNN a COO matrix and then warns about it
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(orders, show_progress=False)
        sim = sp.csr_matrix(model.similarity, dtype=np.float32)
        sim.setdiag(0.0)  # an item is not its own neighbour
        sim.eliminate_zeros()
        sim.sort_indices()
        self.similarity_ = sim
        return self

    @property
    def n_items(self) -> int:
        return int(self.similarity_.shape[0])

    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) rows and scores: sum of basket items' similarity rows, basket excluded."""
        k = check_k(k)
        if not queries:
            return empty_result(0, k)
        return top_k_basket_sums(self.similarity_, queries, k)

    def basket_scores(self, query: CandidateQuery) -> BasketScores:
        """The basket's summed similarity to every item (``generate``'s scores for one basket)."""
        return BasketScores.of_sparse(self.similarity_, query.rows)

    def score_pairs(
        self, queries: Sequence[CandidateQuery], query_of: np.ndarray, rows: np.ndarray
    ) -> np.ndarray:
        """(len(rows),) summed similarity of each row to its basket (see
        ``recsys.candidates.pair_scores``): 0 outside the basket items' K neighbours."""
        rows = np.asarray(rows, np.int64)
        cols = np.where((rows >= 0) & (rows < self.n_items), rows, -1)
        return linear_pair_scores(
            basket_lists(queries, self.n_items), self.similarity_, query_of, cols
        )

    def similar_items(self, rows: np.ndarray) -> sp.csr_matrix:
        """Similarity rows of ``rows`` (m,) as a (m, n_items) CSR, for features."""
        return self.similarity_[np.asarray(rows, dtype=np.int64)]

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {
            k: getattr(self, k) for k in ("weighting", "K", "bm25_k1", "bm25_b", "num_threads")
        }
        (directory / "item_knn.json").write_text(json.dumps(params, indent=2))
        sp.save_npz(directory / "similarity.npz", self.similarity_)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        self = cls(**json.loads((directory / "item_knn.json").read_text()))
        self.similarity_ = sp.csr_matrix(
            sp.load_npz(directory / "similarity.npz"), dtype=np.float32
        )
        return self
