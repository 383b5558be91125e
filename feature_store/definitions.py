"""Every ranker feature, defined once: name, version, entity, group and how to compute it.

The same functions answer offline (training examples: a ``CandidateBatch`` whose ``now`` is each
basket's own time, so only earlier events count) and online (one request, ``now`` = the request
time or the model's reference time). A *feature set* is a named, versioned list of definitions;
its name and version are stored in the model bundle and the ranker consumes exactly its columns.

Groups let ablations drop whole families (``style``, ``cf``...) without naming every column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from feature_store.statistics import FeatureStatistics
from recsys.ranking.features import CandidateBatch

DAY = 86_400
POPULARITY_WINDOWS = (7, 30, 365)


class FeatureContext:
    """Shared intermediate arrays of one batch, computed lazily and once; the feature functions
    read from it. All outputs are (n,) aligned with ``batch.cand_rows``."""

    def __init__(self, batch: CandidateBatch, stats: FeatureStatistics) -> None:
        self.batch = batch
        self.stats = stats

    @cached_property
    def query(self) -> np.ndarray:
        return self.batch.query_of()

    @cached_property
    def basket_size(self) -> np.ndarray:
        sizes = np.array([len(b) for b in self.batch.basket_rows], dtype=np.float32)
        return sizes[self.query]

    @cached_property
    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(candidate position, basket row) pairs, candidate-major, and per-candidate pair count."""
        b = self.batch
        pos_parts, row_parts = [], []
        counts = np.zeros(len(b.cand_rows), dtype=np.int64)
        for q in range(b.n_queries):
            lo, hi = int(b.query_ptr[q]), int(b.query_ptr[q + 1])
            basket = np.asarray(b.basket_rows[q], dtype=np.int64)
            if hi == lo or not len(basket):
                continue
            basket = np.unique(basket)
            pos_parts.append(np.repeat(np.arange(lo, hi), len(basket)))
            row_parts.append(np.tile(basket, hi - lo))
            counts[lo:hi] = len(basket)
        if not pos_parts:
            e = np.empty(0, np.int64)
            return e, e, counts
        return np.concatenate(pos_parts), np.concatenate(row_parts), counts

    @cached_property
    def _lift(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per candidate: max lift, mean lift, max log1p(count) over the basket's items."""
        if self.batch.n_queries == 1:
            return self._lift_one()
        pos, rows, counts = self._pairs
        n = len(self.batch.cand_rows)
        mx = np.zeros(n, np.float32)
        mean = np.zeros(n, np.float32)
        cnt = np.zeros(n, np.float32)
        if len(pos):
            lift, count = self.stats.pair_values(rows, self.batch.cand_rows[pos])
            np.maximum.at(mx, pos, lift)
            np.add.at(mean, pos, lift)
            np.maximum.at(cnt, pos, np.log1p(count))
            mean = mean / np.maximum(counts, 1)
        return mx, mean.astype(np.float32), cnt

    def _lift_one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``_lift`` for a batch of one basket (a request) on a (candidates, basket) grid: the
        same values, summed in the same order (basket items in row order), without ufunc.at."""
        cand = self.batch.cand_rows
        n = len(cand)
        basket = np.unique(np.asarray(self.batch.basket_rows[0], dtype=np.int64))
        if not n or not len(basket):
            return np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
        lift, count = self.stats.pair_values(np.tile(basket, n), np.repeat(cand, len(basket)))
        lift = lift.reshape(n, len(basket))
        total = np.zeros(n, np.float32)
        for j in range(len(basket)):
            total += lift[:, j]
        mx = np.maximum(lift.max(axis=1), np.float32(0))
        cnt = np.maximum(np.log1p(count.reshape(n, len(basket))).max(axis=1), np.float32(0))
        mean = (total / np.maximum(np.full(n, len(basket), np.int64), 1)).astype(np.float32)
        return mx, mean, cnt

    @cached_property
    def cand_category(self) -> np.ndarray:
        return self.stats.item_category_[self.batch.cand_rows]

    @cached_property
    def _category(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per candidate: max and mean complement probability from the basket's categories,
        and whether its category is already in the basket (NaN without categories)."""
        b, s = self.batch, self.stats
        n = len(b.cand_rows)
        if not s.n_categories_:
            nan = np.full(n, np.nan, np.float32)
            return nan, nan.copy(), nan.copy()
        mx = np.zeros(n, np.float32)
        mean = np.zeros(n, np.float32)
        inb = np.zeros(n, np.float32)
        cat = self.cand_category
        for q in range(b.n_queries):
            lo, hi = int(b.query_ptr[q]), int(b.query_ptr[q + 1])
            if hi == lo:
                continue
            bc = s.item_category_[np.asarray(b.basket_rows[q], np.int64)]
            bc = np.unique(bc[bc >= 0])
            if not len(bc):
                continue
            comp = s.cat_complement_[bc]  # (m_cat, n_cat)
            c = cat[lo:hi]
            has = c >= 0
            cc = np.where(has, c, 0)
            mx[lo:hi] = np.where(has, comp.max(axis=0)[cc], 0.0)
            mean[lo:hi] = np.where(has, comp.mean(axis=0)[cc], 0.0)
            inb[lo:hi] = np.isin(c, bc)
        return mx, mean, inb

    @cached_property
    def cand_styles(self) -> np.ndarray:
        return self.stats.item_styles_[self.batch.cand_rows]

    def _dot(self, per_query: np.ndarray) -> np.ndarray:
        n = len(self.batch.cand_rows)
        if self.cand_styles.shape[1] == 0 or per_query.shape[1] != self.cand_styles.shape[1]:
            return np.zeros(n, np.float32)
        return np.einsum("ij,ij->i", self.cand_styles, per_query[self.query]).astype(np.float32)

    def popularity(self, days: int) -> np.ndarray:
        if len(self.batch.now) and bool(np.all(self.batch.now == self.stats.reference_ts_)):
            return self.stats.popularity_at_reference(days)[self.batch.cand_rows]  # online
        now = self.batch.now[self.query]
        return np.log1p(
            self.stats.purchases_between(self.batch.cand_rows, now - days * DAY, now)
        ).astype(np.float32)

    @cached_property
    def basket_price(self) -> np.ndarray:
        prices = self.stats.prices_
        per_q = np.array(
            [
                float(np.average(prices[r], weights=np.maximum(qty, 1))) if len(r) else np.nan
                for r, qty in zip(self.batch.basket_rows, self.batch.basket_qty, strict=True)
            ],
            dtype=np.float64,
        )
        return per_q[self.query]

    @cached_property
    def _user_history(self) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate: the shopper's earlier orders with it and days since the latest
        (both NaN for an unknown shopper; days NaN when never bought)."""
        b = self.batch
        n = len(b.cand_rows)
        if b.user_rows is None:
            nan = np.full(n, np.nan, np.float32)
            return nan, nan.copy()
        users = np.asarray(b.user_rows, np.int64)[self.query]
        now = b.now[self.query]
        count, last = self.stats.user_item_history(users, b.cand_rows, now)
        known = users >= 0
        n_orders = np.where(known, np.log1p(count), np.nan).astype(np.float32)
        days = np.where(known & (last >= 0), (now - last) / DAY, np.nan).astype(np.float32)
        return n_orders, days

    def source(self, name: str, what: str) -> np.ndarray:
        j = self.batch.source_names.index(name)
        arr = self.batch.source_scores if what == "score" else self.batch.source_ranks
        return arr[:, j].astype(np.float32)


@dataclass(frozen=True)
class FeatureDef:
    """One feature: ``entity`` says what it describes (item, basket, item x basket, item x user)."""

    name: str
    version: int
    entity: str
    group: str
    description: str
    compute: Callable[[FeatureContext], np.ndarray]


def _popularity(days: int) -> Callable[[FeatureContext], np.ndarray]:
    return lambda c: c.popularity(days)


def _source(name: str, field: str) -> Callable[[FeatureContext], np.ndarray]:
    return lambda c: c.source(name, field)


def _static_definitions() -> tuple[FeatureDef, ...]:
    defs = [
        FeatureDef(
            "n_sources",
            2,
            "item_basket",
            "source",
            "how many generators proposed it",
            lambda c: np.sum(~np.isnan(c.batch.source_ranks), axis=1).astype(np.float32),
        ),
        FeatureDef(
            "cop_lift_max",
            1,
            "item_basket",
            "co_purchase",
            "max co-purchase lift between the item and a basket item",
            lambda c: c._lift[0],
        ),
        FeatureDef(
            "cop_lift_mean",
            1,
            "item_basket",
            "co_purchase",
            "mean co-purchase lift over the basket's items",
            lambda c: c._lift[1],
        ),
        FeatureDef(
            "cop_count_max",
            1,
            "item_basket",
            "co_purchase",
            "log1p of the largest co-purchase count with a basket item",
            lambda c: c._lift[2],
        ),
        FeatureDef(
            "cat_complement_max",
            1,
            "item_basket",
            "category",
            "max P(order has the item's category | it has a basket category)",
            lambda c: c._category[0],
        ),
        FeatureDef(
            "cat_complement_mean",
            1,
            "item_basket",
            "category",
            "mean of the same over the basket's categories",
            lambda c: c._category[1],
        ),
        FeatureDef(
            "cat_in_basket",
            1,
            "item_basket",
            "category",
            "the item's category is already in the basket",
            lambda c: c._category[2],
        ),
        FeatureDef(
            "style_match",
            1,
            "item_basket",
            "style",
            "dot product of the item's style vector and the basket's style distribution",
            lambda c: c._dot(c.batch.basket_style),
        ),
        FeatureDef(
            "style_confidence",
            1,
            "basket",
            "style",
            "confidence of the basket's style",
            lambda c: c.batch.style_confidence[c.query].astype(np.float32),
        ),
        FeatureDef(
            "item_style_strength",
            1,
            "item",
            "style",
            "how style-informative the item is (0 = neutral)",
            lambda c: c.stats.informativeness_[c.batch.cand_rows].astype(np.float32),
        ),
        FeatureDef(
            "user_style_match",
            1,
            "item_user",
            "style",
            "dot product of the item's style and the shopper's style affinity (NaN: unknown)",
            lambda c: c._dot(c.batch.user_affinity),
        ),
        FeatureDef(
            "price_rel",
            1,
            "item_basket",
            "price",
            "log of the item's price over the basket's mean price",
            lambda c: np.log(
                (c.stats.prices_[c.batch.cand_rows] + 1.0) / (c.basket_price + 1.0)
            ).astype(np.float32),
        ),
        FeatureDef(
            "log_price",
            1,
            "item",
            "price",
            "log1p price",
            lambda c: np.log1p(c.stats.prices_[c.batch.cand_rows]).astype(np.float32),
        ),
        FeatureDef(
            "basket_size",
            1,
            "basket",
            "basket",
            "distinct known items in the basket",
            lambda c: c.basket_size,
        ),
    ]
    defs += [
        FeatureDef(
            "user_item_orders",
            1,
            "item_user",
            "user",
            "log1p of the shopper's earlier orders with the item (repeat purchase; NaN: unknown shopper)",
            lambda c: c._user_history[0],
        ),
        FeatureDef(
            "user_item_days",
            1,
            "item_user",
            "user",
            "days since the shopper last bought the item (NaN: never, or unknown shopper)",
            lambda c: c._user_history[1],
        ),
    ]
    for days in POPULARITY_WINDOWS:
        defs.append(
            FeatureDef(
                f"pop_{days}d",
                1,
                "item",
                "popularity",
                f"log1p purchase lines in the {days} days before the basket's time",
                _popularity(days),
            )
        )
    return tuple(defs)


STATIC_FEATURES: tuple[FeatureDef, ...] = _static_definitions()


def source_features(
    source_names: tuple[str, ...], cf_sources: frozenset[str] = frozenset()
) -> tuple[FeatureDef, ...]:
    """The per-generator family: each source's score and 1-based rank (NaN = not proposed)."""
    out = []
    for name in source_names:
        group = "cf" if name in cf_sources else ("style" if name == "style" else "source")
        out.append(
            FeatureDef(
                f"{name}_score",
                2,
                "item_basket",
                group,
                f"score given by {name} (every candidate where {name} can score any "
                "item, e.g. EASE; else NaN where it did not propose the item)",
                _source(name, "score"),
            )
        )
        out.append(
            FeatureDef(
                f"{name}_rank",
                1,
                "item_basket",
                group,
                f"rank given by {name}",
                _source(name, "rank"),
            )
        )
    return tuple(out)


# Named, versioned feature sets: the ranker consumes exactly the resolved list.
# v2: EASE / RP3beta sources, their scores for every candidate, n_sources counted from ranks.
# v3: the shopper's own history of the item (user_item_orders, user_item_days), point-in-time.
FEATURE_SETS: dict[str, int] = {"basket_completion": 3}


def resolve_feature_set(
    name: str,
    source_names: tuple[str, ...],
    cf_sources: frozenset[str] = frozenset(),
    exclude: tuple[str, ...] = (),
) -> tuple[FeatureDef, ...]:
    """The concrete definitions of feature set ``name`` for a pipeline with these sources.
    ``exclude`` holds feature names or group names (``style``, ``cf``, ``co_purchase``...)."""
    if name not in FEATURE_SETS:
        raise KeyError(f"unknown feature set {name!r}; known: {', '.join(FEATURE_SETS)}")
    defs = source_features(source_names, cf_sources) + STATIC_FEATURES
    return tuple(d for d in defs if d.name not in exclude and d.group not in exclude)


def known_feature_names(source_names: tuple[str, ...]) -> set[str]:
    """Every feature and group name a config may exclude for these sources."""
    defs = source_features(source_names) + STATIC_FEATURES
    return {d.name for d in defs} | {d.group for d in defs} | {"cf"}
