"""Feature statistics against hand-computed values; popularity strictly point-in-time."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from feature_store.statistics import FeatureStatistics


def _orders() -> sp.csr_matrix:
    # 4 orders over 4 items: {0,1}, {0,1}, {0,2}, {3}
    rows = [0, 0, 1, 1, 2, 2, 3]
    cols = [0, 1, 0, 1, 0, 2, 3]
    return sp.csr_matrix((np.ones(7, np.float32), (rows, cols)), shape=(4, 4))


def test_lift_and_counts_are_hand_computed(tmp_path):
    s = FeatureStatistics(min_support=1).fit(
        _orders(),
        item_category=np.array([0, 1, 1, -1]),
        prices=np.ones(4),
        purchase_rows=np.array([0, 1]),
        purchase_ts=np.array([100, 200]),
    )
    lift, count = s.pair_values(np.array([0, 1, 0, 0, 2]), np.array([1, 0, 2, 3, 3]))
    # lift(0,1) = c01 * N / (c0 * c1) = 2 * 4 / (3 * 2) = 4/3 ; lift(0,2) = 1*4/(3*1)
    np.testing.assert_allclose(lift, [4 / 3, 4 / 3, 4 / 3, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(count, [2, 2, 1, 0, 0])
    # categories: 0 -> {0}, 1 -> {1, 2}; P(cat 1 | cat 0) = 3/3 orders, P(cat 0 | cat 1) = 3/3
    np.testing.assert_allclose(s.cat_complement_, [[0, 1], [1, 0]])
    s.save(tmp_path)
    s2 = FeatureStatistics.load(tmp_path)
    np.testing.assert_array_equal(s2.pair_values(np.array([0]), np.array([1]))[0], lift[:1])


def test_min_support_drops_rare_pairs():
    s = FeatureStatistics(min_support=2).fit(
        _orders(),
        np.array([0, 1, 1, -1]),
        np.ones(4),
        np.array([0]),
        np.array([1]),
    )
    lift, _ = s.pair_values(np.array([0, 0]), np.array([1, 2]))
    assert lift[0] > 0 and lift[1] == 0


def test_popularity_counts_only_lines_before_the_time():
    s = FeatureStatistics().fit(
        _orders(),
        np.array([0, 1, 1, -1]),
        np.ones(4),
        purchase_rows=np.array([0, 0, 0, 1]),
        purchase_ts=np.array([100, 200, 300, 200]),
    )
    rows = np.array([0, 0, 0, 1, 2])
    start = np.array([0, 0, 150, 0, 0])
    end = np.array([200, 201, 400, 200, 1000])
    np.testing.assert_array_equal(s.purchases_between(rows, start, end), [1, 2, 2, 0, 0])


def test_user_history_counts_only_the_shoppers_earlier_orders(tmp_path):
    # shopper 0 bought item 1 at t=10 and t=20, item 2 at t=20; shopper 1 bought item 0 at t=30
    users = np.array([0, 0, 0, 0, 1, 1])
    items = np.array([0, 1, 1, 2, 0, 2])
    ts = np.array([10, 10, 20, 20, 30, 30])
    s = FeatureStatistics().fit(
        _orders(), np.full(4, -1), np.ones(4), items, ts, user_purchases=(users, items, ts)
    )
    q_users = np.array([0, 0, 0, 1, -1, 0, 1])
    q_items = np.array([1, 1, 2, 0, 0, 0, 1])
    before = np.array([21, 11, 21, 30, 40, 5, 40])
    count, last = s.user_item_history(q_users, q_items, before)
    # strictly before: the order at the basket's own time never counts; unknown shopper = 0
    np.testing.assert_array_equal(count, [2, 1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(last, [20, 10, 20, -1, -1, -1, -1])
    s.save(tmp_path)
    again = FeatureStatistics.load(tmp_path).user_item_history(q_users, q_items, before)
    np.testing.assert_array_equal(again[0], count)
    np.testing.assert_array_equal(again[1], last)
