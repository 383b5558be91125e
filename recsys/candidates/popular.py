"""Popular items, globally and per category: the fallback and the cold-start answer.

Popularity is the number of training orders holding an item within each window (days before
the last training timestamp ``t_end_``), plus a time-decayed count with half-life
``half_life_days``. Candidates are ranked by the decayed count and must be in stock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np

from recsys.candidates.base import CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.topk import check_k, empty_result, excluded_rows, not_in, top_k


class PopularCandidates(CandidateGenerator):
    """Basket-independent: the most popular in-stock items not in the basket."""

    name = "popular"

    def __init__(
        self, window_days: Sequence[int] = (7, 30, 365), half_life_days: float = 30.0
    ) -> None:
        self.window_days = window_days
        self.half_life_days = half_life_days

    def fit(self, data: TrainingData) -> Self:
        try:
            pop = data.item_popularity(self.window_days, self.half_life_days)
        except ValueError as exc:
            raise ValueError(f"PopularCandidates: {exc}") from exc
        self.t_end_ = pop.t_end
        self.windows_ = pop.windows
        self.counts_ = pop.counts  # (n_windows, n_items)
        self.decayed_ = pop.decayed  # (n_items,)
        self.item_category_ = np.asarray(data.item_category, dtype=np.int64)
        self.in_stock_ = np.asarray(data.in_stock, dtype=bool)
        self._rank()
        return self

    def _rank(self) -> None:
        # rows best first by decayed popularity (ties: more all-time orders, then smaller row)
        order = np.lexsort((np.arange(self.decayed_.size), -self.counts_[-1], -self.decayed_))
        self.ranking_ = order[self.in_stock_[order]].astype(np.int64)

    def popularity(self, window_days: int) -> np.ndarray:
        """(n_items,) orders holding each item in the last ``window_days`` (a fitted window)."""
        if window_days not in self.windows_:
            raise KeyError(
                f"PopularCandidates: no window of {window_days} days (have {self.windows_})"
            )
        out: np.ndarray = self.counts_[self.windows_.index(window_days)]
        return out

    def category_share(self, window_days: int) -> np.ndarray:
        """(n_items,) each item's share of its category's orders in the window (0 without a
        category or with no orders): popularity relative to its own kind, for features."""
        counts = self.popularity(window_days).astype(np.float64)
        cats = self.item_category_
        known = cats >= 0
        totals = np.bincount(
            cats[known], weights=counts[known], minlength=int(cats.max(initial=-1)) + 1
        )
        out = np.zeros(counts.size, np.float32)
        denom = totals[cats[known]]
        out[known] = np.where(denom > 0, counts[known] / np.where(denom > 0, denom, 1.0), 0.0)
        return out

    def top_in_category(
        self, category: int, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Most popular in-stock items of one category: (k,) rows and decayed scores, padded."""
        rows = self.ranking_[self.item_category_[self.ranking_] == category]
        return top_k(rows, self.decayed_[rows], k, exclude)

    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = check_k(k)
        out_rows, out_scores = empty_result(len(queries), k)
        for i, q in enumerate(queries):
            excl = excluded_rows(q)
            head = self.ranking_[: k + excl.size]
            head = head[not_in(head, excl)][:k]
            out_rows[i, : head.size] = head
            out_scores[i, : head.size] = self.decayed_[head]
        return out_rows, out_scores

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {
            "window_days": list(self.windows_),
            "half_life_days": self.half_life_days,
            "t_end_": self.t_end_,
        }
        (directory / "popular.json").write_text(json.dumps(params, indent=2))
        np.savez(
            directory / "popular.npz",
            counts=self.counts_,
            decayed=self.decayed_,
            item_category=self.item_category_,
            in_stock=self.in_stock_,
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        params = json.loads((directory / "popular.json").read_text())
        self = cls(
            window_days=tuple(params["window_days"]), half_life_days=params["half_life_days"]
        )
        self.t_end_ = int(params["t_end_"])
        self.windows_ = tuple(params["window_days"])
        with np.load(directory / "popular.npz", allow_pickle=False) as z:
            self.counts_ = z["counts"]
            self.decayed_ = z["decayed"]
            self.item_category_ = z["item_category"]
            self.in_stock_ = z["in_stock"]
        self._rank()
        return self
