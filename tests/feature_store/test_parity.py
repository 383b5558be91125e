"""The same basket gets the same feature values offline (training examples, in memory, right
after fitting) and online (a request to the recommender loaded back from its bundle)."""

from __future__ import annotations

import numpy as np
import pytest

from feature_store import load_recommender, resolve_feature_set
from recsys.data.orders import build_orders
from recsys.recommendation import BasketLine, Filters, RecommendationRequest, UserContext
from training.evaluation import build_candidate_set, completion_requests
from training.splits import hide_items

pytestmark = pytest.mark.slow  # fits a pipeline on a small sample world


def test_online_features_equal_offline_features(small_world, small_fit, tmp_path):
    rec = small_fit.recommender
    orders = build_orders(small_world.interactions, small_world.catalog)
    late = orders.subset(orders.ts >= np.quantile(orders.ts, 0.9))
    completions = hide_items(late, 0.3, np.random.default_rng(0), max_orders=15)
    offline = build_candidate_set(rec, late, completions)
    online = load_recommender(rec.save(tmp_path / "bundle"))
    requests = completion_requests(rec, late, completions)
    checked = 0
    for q, req in enumerate(requests):
        rows, names, X_on = online.candidate_features(req)
        lo, hi = offline.query_ptr[q], offline.query_ptr[q + 1]
        np.testing.assert_array_equal(rows, offline.cand_rows[lo:hi])
        assert names == rec.features.feature_names
        np.testing.assert_array_equal(X_on, offline.X[lo:hi])
        # and the ranker scores those rows identically
        np.testing.assert_array_equal(
            online.ranker.predict(X_on), rec.ranker.predict(offline.X[lo:hi])
        )
        checked += len(rows)
    assert checked > 0


def test_user_affinity_from_context_feeds_user_style_match(small_world, small_fit):
    rec = small_fit.recommender
    sku = str(small_world.catalog.skus[0])
    base = RecommendationRequest(basket=(BasketLine(sku),), filters=Filters(in_stock=False))
    _, names, X0 = rec.candidate_features(base)
    j = names.index("user_style_match")
    assert np.isnan(X0[:, j]).all()  # unknown shopper
    ctx = UserContext(style_affinity={"loft": 1.0})
    _, _, X1 = rec.candidate_features(
        RecommendationRequest(basket=base.basket, filters=base.filters, user_context=ctx)
    )
    loft = rec.catalog.taxonomy.index("loft")
    rows, _, _ = rec.candidate_features(base)
    np.testing.assert_allclose(X1[:, j], rec.item_styles[rows, loft], rtol=1e-6)


def test_feature_set_is_defined_once_and_groups_drop_together():
    full = resolve_feature_set("basket_completion", ("item_knn", "style"), frozenset({"item_knn"}))
    names = [d.name for d in full]
    assert len(names) == len(set(names))
    assert {"item_knn_score", "style_rank", "cop_lift_max", "pop_30d", "style_match"} <= set(names)
    no_style = {
        d.name
        for d in resolve_feature_set(
            "basket_completion", ("item_knn", "style"), frozenset({"item_knn"}), ("style",)
        )
    }
    assert (
        "style_match" not in no_style
        and "style_rank" not in no_style
        and "item_knn_score" in no_style
    )
    no_cf = {
        d.name
        for d in resolve_feature_set(
            "basket_completion", ("item_knn", "style"), frozenset({"item_knn"}), ("cf",)
        )
    }
    assert "item_knn_score" not in no_cf and "style_match" in no_cf
