"""The fitted state every feature reads: co-purchase pair statistics, category complements,
a purchase timeline for point-in-time popularity, item prices/categories/styles and known
users' style affinity. Fitted once per training from windows strictly before the baskets it
describes; saved as plain ``.npz`` (``allow_pickle=False``) + JSON in the bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from recsys.engine.aggregates import OrderAggregates
from recsys.engine.inprocess import aggregate_orders

STATS_FILE = "feature_statistics.npz"
META_FILE = "feature_statistics.json"
TS_BITS = 34  # seconds since base_ts fit in 34 bits (~540 years); item rows use the rest


class FeatureStatistics:
    """Constructor stores hyperparameters; ``fit`` learns the state (names end with ``_``).

    ``pair_keys_`` (p,) int64 sorted keys ``a * n_items + b`` of item pairs bought together at
    least ``min_support`` times in the statistics window, with ``pair_lift_`` / ``pair_count_``
    (p,) float32; ``cat_complement_`` (n_cat, n_cat) float32 = P(order has b | it has a), 0 on
    the diagonal; ``timeline_keys_`` (e,) int64 sorted ``item << TS_BITS | (ts - base_ts_)`` of
    every purchase line and ``timeline_cum_`` (e+1,) its prefix counts; ``user_pairs_`` (u,)
    int64 sorted keys ``user * n_items + item`` of every (known shopper, item) bought in any order
    and ``user_timeline_keys_`` (o,) int64 sorted ``pair index << TS_BITS | (ts - base_ts_)`` of
    each order that bought it (the shopper's own history, looked up point-in-time)."""

    def __init__(self, min_support: int = 2, max_pairs_per_item: int = 300) -> None:
        self.min_support = min_support
        self.max_pairs_per_item = max_pairs_per_item

    def fit(
        self,
        orders: sp.csr_matrix,
        item_category: np.ndarray,
        prices: np.ndarray,
        purchase_rows: np.ndarray,
        purchase_ts: np.ndarray,
        item_styles: np.ndarray | None = None,
        informativeness: np.ndarray | None = None,
        user_affinity: np.ndarray | None = None,
        reference_ts: int | None = None,
        user_purchases: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        aggregates: OrderAggregates | None = None,
    ) -> Self:
        """``orders`` (n_orders, n_items) purchases of the statistics window; ``purchase_rows``
        / ``purchase_ts`` (e,) every purchase line (item row, epoch seconds) the popularity
        features may look at (lookups only ever count lines strictly before a basket's time);
        ``item_styles`` (n_items, n_styles); ``user_affinity`` (n_users, n_styles) NaN rows for
        users without styled purchases; ``reference_ts`` the model's "now" for online requests
        (default: last purchase); ``user_purchases`` (user rows, item rows, epoch seconds), one
        entry per (order, item) of known shoppers (user row >= 0), for the repeat-purchase
        features (lookups only count orders strictly before a basket's time); ``aggregates`` the
        co-occurrence counts of ``orders`` when an aggregation engine already computed them
        (``recsys.engine``): the pair, item and category statistics are then read from them,
        not recomputed from ``orders``."""
        n_items = orders.shape[1]
        self.n_items_ = int(n_items)
        if aggregates is None:
            aggregates = aggregate_orders(orders, item_category)
        if aggregates.n_items != n_items:
            raise ValueError(
                f"FeatureStatistics: aggregates cover {aggregates.n_items} items, orders {n_items}"
            )
        item_counts = aggregates.item_orders.astype(np.float32)
        n_orders = max(aggregates.n_orders, 1)
        co = sp.csr_matrix(aggregates.pairs, dtype=np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        co.data[co.data < self.min_support] = 0
        co.eliminate_zeros()
        co = self._top_per_row(co.tocsr())
        coo = co.tocoo()
        a, b, c = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data.astype(np.float64)
        lift = c * n_orders / np.maximum(item_counts[a] * item_counts[b], 1.0)
        keys = a * n_items + b
        order = np.argsort(keys, kind="stable")
        self.pair_keys_ = keys[order]
        self.pair_lift_ = lift[order].astype(np.float32)
        self.pair_count_ = c[order].astype(np.float32)

        item_category = np.asarray(item_category, dtype=np.int64)
        self.item_category_ = item_category
        n_cat = (
            int(item_category.max()) + 1 if len(item_category) and item_category.max() >= 0 else 0
        )
        self.n_categories_ = n_cat
        if n_cat:
            cc = aggregates.category_pairs.astype(np.float64)
            diag = np.maximum(np.diag(cc), 1.0)
            comp = cc / diag[:, None]
            np.fill_diagonal(comp, 0.0)
            self.cat_complement_ = comp.astype(np.float32)
        else:
            self.cat_complement_ = np.zeros((0, 0), np.float32)

        self.prices_ = np.asarray(prices, dtype=np.float64)
        self.item_popularity_ = item_counts.astype(np.float32)
        if item_styles is None:
            item_styles = np.zeros((n_items, 0), np.float32)
        self.item_styles_ = np.asarray(item_styles, dtype=np.float32)
        if informativeness is None:
            informativeness = (
                self.item_styles_.max(axis=1)
                if self.item_styles_.shape[1]
                else np.zeros(n_items, np.float32)
            )
        self.informativeness_ = np.asarray(informativeness, dtype=np.float32)
        n_styles = self.item_styles_.shape[1]
        if user_affinity is None:
            user_affinity = np.zeros((0, n_styles), np.float32)
        self.user_affinity_ = np.asarray(user_affinity, dtype=np.float32)

        purchase_rows = np.asarray(purchase_rows, dtype=np.int64)
        purchase_ts = np.asarray(purchase_ts, dtype=np.int64)
        ok = purchase_rows >= 0
        purchase_rows, purchase_ts = purchase_rows[ok], purchase_ts[ok]
        self.base_ts_ = int(purchase_ts.min()) - 1 if len(purchase_ts) else 0
        tkeys = (purchase_rows << TS_BITS) | (purchase_ts - self.base_ts_)
        self.timeline_keys_ = np.sort(tkeys)
        self.timeline_cum_ = np.arange(len(tkeys) + 1, dtype=np.float64)
        self.reference_ts_ = int(
            reference_ts
            if reference_ts is not None
            else (purchase_ts.max() + 1 if len(purchase_ts) else 0)
        )
        self._fit_user_timeline(user_purchases)
        return self

    def _fit_user_timeline(
        self, user_purchases: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    ) -> None:
        e = np.empty(0, np.int64)
        self.user_pairs_, self.user_timeline_keys_ = e, e.copy()
        if user_purchases is None:
            return
        users, items, ts = (np.asarray(a, np.int64) for a in user_purchases)
        ok = (users >= 0) & (items >= 0)
        users, items, ts = users[ok], items[ok], ts[ok]
        if not len(users):
            return
        pairs = users * self.n_items_ + items
        self.user_pairs_, idx = np.unique(pairs, return_inverse=True)
        dt = np.clip(ts - self.base_ts_, 0, (1 << TS_BITS) - 1)
        self.user_timeline_keys_ = np.sort((idx.astype(np.int64) << TS_BITS) | dt)

    def _top_per_row(self, co: sp.csr_matrix) -> sp.csr_matrix:
        """Keep each item's ``max_pairs_per_item`` most frequent partners (bounds memory)."""
        lengths = np.diff(co.indptr)
        if not len(lengths) or lengths.max() <= self.max_pairs_per_item:
            return co
        keep = np.zeros(len(co.data), dtype=bool)
        for i in np.nonzero(lengths > 0)[0]:
            lo, hi = co.indptr[i], co.indptr[i + 1]
            if hi - lo <= self.max_pairs_per_item:
                keep[lo:hi] = True
            else:
                top = np.argpartition(-co.data[lo:hi], self.max_pairs_per_item)[
                    : self.max_pairs_per_item
                ]
                keep[lo + top] = True
        co.data[~keep] = 0
        co.eliminate_zeros()
        return co

    # --- lookups (vectorised; used by the feature definitions) -------------------------------

    def pair_values(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lift and count of item pairs (a[i], b[i]); 0 where never bought together enough."""
        keys = np.asarray(a, np.int64) * self.n_items_ + np.asarray(b, np.int64)
        if not len(self.pair_keys_):
            z = np.zeros(len(keys), np.float32)
            return z, z.copy()
        pos = np.searchsorted(self.pair_keys_, keys)
        pos_c = np.minimum(pos, len(self.pair_keys_) - 1)
        hit = self.pair_keys_[pos_c] == keys
        lift = np.where(hit, self.pair_lift_[pos_c], 0.0).astype(np.float32)
        count = np.where(hit, self.pair_count_[pos_c], 0.0).astype(np.float32)
        return lift, count

    def purchases_between(self, rows: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Purchase lines of item ``rows[i]`` with ``start[i] <= ts < end[i]`` (epoch s), (n,)."""
        rows = np.asarray(rows, np.int64)
        lo = np.clip(np.asarray(start, np.int64) - self.base_ts_, 0, (1 << TS_BITS) - 1)
        hi = np.clip(np.asarray(end, np.int64) - self.base_ts_, 0, (1 << TS_BITS) - 1)
        k_lo = np.searchsorted(self.timeline_keys_, (rows << TS_BITS) | lo, side="left")
        k_hi = np.searchsorted(self.timeline_keys_, (rows << TS_BITS) | hi, side="left")
        return self.timeline_cum_[k_hi] - self.timeline_cum_[k_lo]

    def user_item_history(
        self, users: np.ndarray, rows: np.ndarray, before: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each (shopper ``users[i]``, item ``rows[i]``): how many of the shopper's orders
        strictly before ``before[i]`` (epoch s) bought the item, and the time of the latest
        (epoch s, -1 when none); users < 0 (unknown shopper) count 0."""
        users = np.asarray(users, np.int64)
        rows = np.asarray(rows, np.int64)
        n = len(rows)
        count = np.zeros(n, np.float64)
        last = np.full(n, -1, np.int64)
        pairs = getattr(self, "user_pairs_", np.empty(0, np.int64))
        if not len(pairs) or not n:
            return count, last
        keys = users * self.n_items_ + rows
        pos = np.minimum(np.searchsorted(pairs, keys), len(pairs) - 1)
        hit = np.flatnonzero((users >= 0) & (pairs[pos] == keys))
        if not len(hit):
            return count, last
        hi_ts = np.clip(np.asarray(before, np.int64)[hit] - self.base_ts_, 0, (1 << TS_BITS) - 1)
        base = pos[hit].astype(np.int64) << TS_BITS
        k_lo = np.searchsorted(self.user_timeline_keys_, base, side="left")
        k_hi = np.searchsorted(self.user_timeline_keys_, base | hi_ts, side="left")
        c = k_hi - k_lo
        count[hit] = c
        some = c > 0
        prev = self.user_timeline_keys_[np.maximum(k_hi - 1, 0)] & ((1 << TS_BITS) - 1)
        last[hit[some]] = prev[some] + self.base_ts_
        return count, last

    def popularity_at_reference(self, days: int) -> np.ndarray:
        """(n_items,) float32 ``log1p`` purchase lines in the ``days`` before ``reference_ts_``
        (the model's "now", which every online request without its own time uses): one
        per-item block computed once, then a gather per request instead of two binary searches
        per candidate. The same arithmetic as the per-candidate path, so the same values."""
        cache = self.__dict__.setdefault("_popularity_blocks", {})
        block = cache.get(days)
        if block is None:
            rows = np.arange(self.n_items_, dtype=np.int64)
            now = np.full(self.n_items_, self.reference_ts_, np.int64)
            block = np.log1p(self.purchases_between(rows, now - days * 86_400, now)).astype(
                np.float32
            )
            cache[days] = block
        return block

    # --- persistence -------------------------------------------------------------------------

    _ARRAYS = (
        "pair_keys_",
        "pair_lift_",
        "pair_count_",
        "item_category_",
        "cat_complement_",
        "prices_",
        "item_popularity_",
        "item_styles_",
        "informativeness_",
        "user_affinity_",
        "timeline_keys_",
        "user_pairs_",
        "user_timeline_keys_",
    )

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            directory / STATS_FILE, **{k.rstrip("_"): getattr(self, k) for k in self._ARRAYS}
        )
        meta = {
            "min_support": self.min_support,
            "max_pairs_per_item": self.max_pairs_per_item,
            "n_items": self.n_items_,
            "n_categories": self.n_categories_,
            "base_ts": self.base_ts_,
            "reference_ts": self.reference_ts_,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        self = cls(meta["min_support"], meta["max_pairs_per_item"])
        with np.load(directory / STATS_FILE, allow_pickle=False) as z:
            for k in cls._ARRAYS:
                name = k.rstrip("_")
                # bundles saved before the shopper timeline existed: no repeat-purchase history
                setattr(self, k, z[name] if name in z.files else np.empty(0, np.int64))
        self.n_items_ = int(meta["n_items"])
        self.n_categories_ = int(meta["n_categories"])
        self.base_ts_ = int(meta["base_ts"])
        self.reference_ts_ = int(meta["reference_ts"])
        self.timeline_cum_ = np.arange(len(self.timeline_keys_) + 1, dtype=np.float64)
        return self
