"""LightGBMRanker and the diversity step on small synthetic data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.ranking import LightGBMRanker, cap_per_category


def _data(
    seed: int, n_groups: int = 150, size: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Feature 0 decides relevance (noisy), feature 1 is noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_groups * size, 2)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=len(X)) > 1.0).astype(np.float32)
    return X, y, np.full(n_groups, size)


def test_ranker_learns_the_relevant_feature_and_round_trips(tmp_path):
    X, y, g = _data(0)
    Xv, yv, gv = _data(1, 50)
    r = LightGBMRanker(n_estimators=30, num_leaves=7, min_data_in_leaf=5, seed=3).fit(
        X, y, g, ("signal", "noise"), Xv, yv, gv
    )
    imp = r.feature_importance()
    assert list(imp)[0] == "signal"
    Xt, yt, _ = _data(2, 30)
    s = r.predict(Xt)
    # AUC-like check: positives score above negatives on unseen data
    assert s[yt > 0].mean() > s[yt == 0].mean() + 0.5
    r.save(tmp_path / "ranker")
    r2 = LightGBMRanker.load(tmp_path / "ranker")
    np.testing.assert_array_equal(r2.predict(Xt), s)
    assert r2.feature_names_ == ("signal", "noise")


def test_ranker_is_deterministic_given_seed():
    X, y, g = _data(0)
    a = (
        LightGBMRanker(n_estimators=10, num_leaves=7, seed=1)
        .fit(X, y, g, ("a", "b"))
        .predict(X[:50])
    )
    b = (
        LightGBMRanker(n_estimators=10, num_leaves=7, seed=1)
        .fit(X, y, g, ("a", "b"))
        .predict(X[:50])
    )
    np.testing.assert_array_equal(a, b)


def test_ranker_rejects_bad_shapes():
    X, y, g = _data(0, 5)
    with pytest.raises(ValueError, match="groups sum"):
        LightGBMRanker().fit(X, y, g[:-1], ("a", "b"))
    with pytest.raises(ValueError, match="feature names"):
        LightGBMRanker().fit(X, y, g, ("a",))
    with pytest.raises(ValueError, match="no positive"):
        LightGBMRanker().fit(X, np.zeros_like(y), g, ("a", "b"))
    r = LightGBMRanker(n_estimators=3, num_leaves=3, min_data_in_leaf=1).fit(X, y, g, ("a", "b"))
    with pytest.raises(ValueError, match="expected 2 features"):
        r.predict(np.zeros((3, 5), np.float32))


def test_category_cap_keeps_order_and_fills_up():
    order = np.arange(6)
    cats = np.array([0, 0, 0, 1, -1, 0])
    # cap 2: the third and sixth item (category 0) are skipped, then used to fill to k
    assert cap_per_category(order, cats, 4, 2).tolist() == [0, 1, 3, 4]
    assert cap_per_category(order, cats, 6, 2).tolist() == [0, 1, 3, 4, 2, 5]
    assert cap_per_category(order, cats, 3, 0).tolist() == [0, 1, 2]
    assert cap_per_category(np.array([], np.int64), cats, 3, 2).tolist() == []


def test_reserved_slots_replace_the_lowest_non_eligible_picks():
    from recsys.ranking.diversity import reserve_slots

    order = np.arange(8)  # positions already best first
    cats = np.array([0, 0, 1, 1, 2, 3, 3, 4])
    eligible = np.array([False, False, False, False, False, True, True, True])
    picked = np.arange(5)
    out = reserve_slots(picked, order, eligible, cats, n_slots=2)
    # positions 5 and 7 (one per category: 6 shares category 3 with 5) replace 4 and 3
    assert out.tolist() == [0, 1, 2, 5, 7]
    # enough eligible already, or nothing eligible: unchanged
    assert reserve_slots(np.array([5, 0, 1]), order, eligible, cats, 1).tolist() == [5, 0, 1]
    none = np.zeros(8, bool)
    assert reserve_slots(picked, order, none, cats, 2).tolist() == picked.tolist()
    assert reserve_slots(picked, order, eligible, cats, 0).tolist() == picked.tolist()
