"""Style retrieval: items of the basket's complementary categories, nearest the basket's style.

For a basket, category weights come from the category->category complement statistics
(``CoPurchaseCandidates.category_complements_``: max over the basket's categories, 0 for
categories already in the basket), restricted to the look-defining categories (``look_categories``: where
the catalog tags styles at least half as often as in its most-tagged category, i.e. furniture,
lighting, decor, not tiles or gloves; without tag data, where most items carry a style), with a small floor so
that a finishing-materials basket (tile + wallpaper, whose co-purchase complements are all
neutral accessories) still gets the furniture and lighting that complete its look; the
``n_categories`` best are kept. Within each, the in-stock
items whose L2-normalised style vectors have the largest inner product (cosine) with the
basket's style are retrieved from a per-category exact faiss index; each category gets an
equal share of ``k`` and items are ordered by ``weight(category) * cosine``.

The basket style is ``query.style`` when the style model gave one, else the mean style of the
basket's items. Without ``item_styles`` (no style model) the generator returns nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np

from recsys.candidates.ann_index import AnnIndex
from recsys.candidates.base import CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.topk import check_k, empty_result, excluded_rows, top_k

STYLE_BEARING_SHARE = 0.5  # a category is style-bearing when half its items carry a style


def look_categories(share: np.ndarray) -> np.ndarray:
    """(n_cat,) bool: categories whose share (of tagged or styled items) is at least half the
    highest category's, so a catalog that tags little overall still has look categories."""
    share = np.asarray(share, dtype=np.float32)
    top = float(share.max()) if share.size else 0.0
    return share >= STYLE_BEARING_SHARE * top if top > 0 else np.zeros(share.shape, bool)


FLOOR_WEIGHT = 1e-3  # below any real complement: such categories come after linked ones


class StyleCandidates(CandidateGenerator):
    """Basket -> in-stock items of complementary categories that match the basket's style."""

    name = "style"
    fit_inputs = {"category_complements": (CoPurchaseCandidates, "category_complements_")}

    def __init__(self, n_categories: int = 4, min_support: int = 2) -> None:
        self.n_categories = n_categories
        self.min_support = min_support

    def fit(self, data: TrainingData, category_complements: np.ndarray | None = None) -> Self:
        """``category_complements`` (n_cat, n_cat): reuse a fitted co-purchase model's matrix;
        None computes it from ``data``."""
        if self.n_categories < 1:
            raise ValueError(f"StyleCandidates: n_categories must be >= 1, got {self.n_categories}")
        self.item_category_ = np.asarray(data.item_category, dtype=np.int64)
        self.in_stock_ = np.asarray(data.in_stock, dtype=bool)
        n = data.n_items
        if self.item_category_.shape != (n,) or self.in_stock_.shape != (n,):
            raise ValueError(f"StyleCandidates: item_category and in_stock must have shape ({n},)")
        if category_complements is None:
            co = CoPurchaseCandidates(min_support=self.min_support, max_neighbours=1).fit(data)
            category_complements = co.category_complements_
        self.category_complements_ = np.asarray(category_complements, dtype=np.float32)
        n_cat = int(self.item_category_.max()) + 1 if n and self.item_category_.max() >= 0 else 0
        if self.category_complements_.shape != (n_cat, n_cat):
            raise ValueError(
                f"StyleCandidates: category_complements must be ({n_cat}, {n_cat}), got {self.category_complements_.shape}"
            )
        self.index_: AnnIndex | None = None
        self.item_styles_: np.ndarray | None = None
        self.category_styled_ = np.zeros(n_cat, np.float32)
        self.tag_share_ = (
            np.asarray(data.category_tag_share, dtype=np.float32)
            if data.category_tag_share is not None and len(data.category_tag_share) == n_cat
            else None
        )
        if data.item_styles is not None:
            styles = np.asarray(data.item_styles, dtype=np.float32)
            if styles.ndim != 2 or styles.shape[0] != n:
                raise ValueError(
                    f"StyleCandidates: item_styles must be ({n}, n_styles), got {styles.shape}"
                )
            self._index(styles)
        return self

    def _index(self, styles: np.ndarray, normalised: bool = False) -> None:
        norms = np.linalg.norm(styles, axis=1, keepdims=True)
        if not normalised:
            styles = styles / np.where(norms > 0, norms, 1.0)
        self.item_styles_ = np.ascontiguousarray(styles, dtype=np.float32)
        groups = np.where(self.in_stock_ & (norms[:, 0] > 0), self.item_category_, -1)
        self.index_ = AnnIndex(kind="flat").fit(self.item_styles_, groups=groups)
        n_cat = self.category_complements_.shape[0]
        cats = self.item_category_
        known = cats >= 0
        total = np.bincount(cats[known], minlength=n_cat).astype(np.float32)
        styled = np.bincount(cats[known], weights=(norms[known, 0] > 0), minlength=n_cat)
        # share of each category's items that carry any style
        self.category_styled_ = (styled / np.maximum(total, 1.0)).astype(np.float32)
        if (
            self.tag_share_ is not None
            and self.tag_share_.size
            and float(self.tag_share_.max()) > 0
        ):
            self.category_styled_ = self.tag_share_

    @property
    def n_items(self) -> int:
        return int(self.item_category_.shape[0])

    def category_weights(self, basket_rows: np.ndarray) -> np.ndarray:
        """(n_cat,) complement weight of each category for the basket (0 for its own)."""
        n_cat = self.category_complements_.shape[0]
        rows = np.asarray(basket_rows, dtype=np.int64)
        rows = rows[(rows >= 0) & (rows < self.n_items)]
        cats = np.unique(self.item_category_[rows])
        cats = cats[cats >= 0]
        if cats.size == 0:
            return np.ones(n_cat, np.float32)  # nothing to complement: every category, by style
        weights = self.category_complements_[cats].max(axis=0).copy()
        bearing = look_categories(self.category_styled_)
        # complements first; style-bearing categories with no co-purchase link still qualify
        weights = np.where(bearing, np.maximum(weights, FLOOR_WEIGHT * self.category_styled_), 0.0)
        weights[cats] = 0.0
        return weights.astype(np.float32)

    def basket_style(self, query: CandidateQuery) -> np.ndarray | None:
        """(n_styles,) unit vector: the query's style, else the mean of its items' styles."""
        assert self.item_styles_ is not None
        if query.style is not None:
            style = np.asarray(query.style, dtype=np.float32).ravel()
            if style.shape != (self.item_styles_.shape[1],):
                raise ValueError(
                    f"StyleCandidates: query.style must have {self.item_styles_.shape[1]} values, got {style.shape}"
                )
        else:
            rows = np.asarray(query.rows, dtype=np.int64)
            rows = rows[(rows >= 0) & (rows < self.n_items)]
            if rows.size == 0:
                return None
            style = self.item_styles_[rows].mean(axis=0)
        norm = float(np.linalg.norm(style))
        return style / norm if norm > 0 and np.isfinite(norm) else None

    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = check_k(k)
        out_rows, out_scores = empty_result(len(queries), k)
        if self.index_ is None or k == 0:
            return out_rows, out_scores
        for i, q in enumerate(queries):
            style = self.basket_style(q)
            if style is None:
                continue
            weights = self.category_weights(q.rows)
            ranked = np.lexsort((np.arange(weights.size), -weights))
            cats = [int(c) for c in ranked[: self.n_categories] if weights[c] > 0]
            if not cats:
                continue
            share = -(-k // len(cats))
            excl = excluded_rows(q)
            query = np.ascontiguousarray(style, dtype=np.float32)
            rows, scores = [], []
            for c in cats:
                r, s = self.index_.search_group(query, share, excl, c)
                rows.append(r)
                scores.append(weights[c] * s)
            out_rows[i], out_scores[i] = top_k(np.concatenate(rows), np.concatenate(scores), k)
        return out_rows, out_scores

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params = {"n_categories": self.n_categories, "min_support": self.min_support}
        (directory / "style.json").write_text(json.dumps(params, indent=2))
        arrays = {
            "item_category": self.item_category_,
            "in_stock": self.in_stock_,
            "category_complements": self.category_complements_,
        }
        if self.item_styles_ is not None:
            arrays["item_styles"] = self.item_styles_
        if self.tag_share_ is not None:
            arrays["tag_share"] = self.tag_share_
        np.savez(directory / "style.npz", **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        self = cls(**json.loads((directory / "style.json").read_text()))
        with np.load(directory / "style.npz", allow_pickle=False) as z:
            self.item_category_ = z["item_category"]
            self.in_stock_ = z["in_stock"]
            self.category_complements_ = z["category_complements"]
            styles = z["item_styles"] if "item_styles" in z.files else None
            self.tag_share_ = z["tag_share"] if "tag_share" in z.files else None
        self.index_, self.item_styles_ = None, None
        self.category_styled_ = np.zeros(self.category_complements_.shape[0], np.float32)
        if styles is not None:
            self._index(styles, normalised=True)
        return self
