"""Repeat purchases: a known shopper's own earlier items.

Shoppers buy many things again (consumables, a trade customer's usual lines): on Online Retail
45% of the items of a later invoice were bought by the same customer before, and a third of
those are outside what the item-item generators propose for the basket. This generator puts
them into the candidate pool; the ranker decides with the point-in-time history features
(``user_item_orders``, ``user_item_days``) whether each is likely now. Guests and shoppers
unknown to the model get nothing (the other generators cover them).

Score: the number of the shopper's orders with the item in the training window, plus the
recency of the latest one as a fraction in [0, 1) (ties go to the more recent item). Stored as
a (n_users, n_items) sparse ``.npz``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from recsys.candidates.base import CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.topk import check_k, empty_result, excluded_rows, top_k


class RepeatPurchaseCandidates(CandidateGenerator):
    """Shopper -> the items of their earlier orders, most often and most recently bought first."""

    name = "repeat"

    def __init__(self, max_items_per_user: int = 500) -> None:
        self.max_items_per_user = max_items_per_user

    def fit(self, data: TrainingData) -> Self:
        if self.max_items_per_user < 1:
            raise ValueError(
                f"RepeatPurchaseCandidates: max_items_per_user must be >= 1, got {self.max_items_per_user}"
            )
        orders = sp.csr_matrix(data.orders)
        users = np.asarray(data.order_users, np.int64)
        ts = np.asarray(data.order_ts, np.int64)
        per_order = np.diff(orders.indptr)
        u = np.repeat(users, per_order)
        t = np.repeat(ts, per_order)
        items = orders.indices.astype(np.int64)
        keep = (u >= 0) & (u < data.n_users) & (orders.data > 0)
        u, t, items = u[keep], t[keep], items[keep]
        shape = (int(data.n_users), data.n_items)
        if not len(u):
            self.history_ = sp.csr_matrix(shape, dtype=np.float32)
            return self
        t0, t1 = int(t.min()), int(t.max())
        # one entry per (order, item): orders with the item, and the latest time as a fraction
        pairs = u * data.n_items + items
        uniq, inv = np.unique(pairs, return_inverse=True)
        count = np.bincount(inv).astype(np.float64)
        last = np.full(len(uniq), t0, np.int64)
        np.maximum.at(last, inv, t)
        score = count + (last - t0) / (t1 - t0 + 1.0)
        hist = sp.csr_matrix(
            (score.astype(np.float32), (uniq // data.n_items, uniq % data.n_items)), shape=shape
        )
        self.history_ = self._cap(hist)
        return self

    def _cap(self, hist: sp.csr_matrix) -> sp.csr_matrix:
        """Each shopper's ``max_items_per_user`` best items (bounds the artifact)."""
        lengths = np.diff(hist.indptr)
        if not len(lengths) or lengths.max() <= self.max_items_per_user:
            hist.sort_indices()
            return hist
        keep = np.zeros(len(hist.data), bool)
        for i in np.flatnonzero(lengths):
            lo, hi = hist.indptr[i], hist.indptr[i + 1]
            if hi - lo <= self.max_items_per_user:
                keep[lo:hi] = True
            else:
                best = np.argsort(-hist.data[lo:hi], kind="stable")[: self.max_items_per_user]
                keep[lo + best] = True
        hist.data[~keep] = 0
        hist.eliminate_zeros()
        hist.sort_indices()
        return hist

    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, k) rows and scores: the query's shopper's earlier items, basket excluded."""
        k = check_k(k)
        rows, scores = empty_result(len(queries), k)
        h = self.history_
        for i, q in enumerate(queries):
            user = int(q.user_row)
            if not 0 <= user < h.shape[0]:
                continue
            lo, hi = h.indptr[user], h.indptr[user + 1]
            if hi == lo:
                continue
            rows[i], scores[i] = top_k(h.indices[lo:hi], h.data[lo:hi], k, excluded_rows(q))
        return rows, scores

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "repeat.json").write_text(
            json.dumps({"max_items_per_user": self.max_items_per_user}, indent=2)
        )
        sp.save_npz(directory / "history.npz", self.history_)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        self = cls(**json.loads((directory / "repeat.json").read_text()))
        self.history_ = sp.csr_matrix(sp.load_npz(directory / "history.npz"), dtype=np.float32)
        return self
