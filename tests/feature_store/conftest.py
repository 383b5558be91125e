"""A small fitted pipeline on a small sample world, shared by the feature-store tests."""

from __future__ import annotations

import pytest

from recsys.config import parse_pipeline_config

SMALL_PIPELINE = {
    "version": 1,
    "feature_set": "basket_completion",
    "candidates": {
        "total": 60,
        "generators": [
            {"name": "item_knn", "quota": 25, "params": {"weighting": "bm25"}},
            {"name": "co_purchase", "quota": 20},
            {"name": "cf", "quota": 10, "params": {"model": "als", "factors": 8, "iterations": 3}},
            {"name": "style", "quota": 10},
            {"name": "popular", "quota": 10},
        ],
    },
    "ranker": {
        "params": {"n_estimators": 20, "num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 5}
    },
    "training": {"max_train_orders": 600, "max_validation_orders": 200, "max_eval_orders": 200},
}


@pytest.fixture(scope="session")
def small_world():
    from recsys.sample_world import generate_world

    return generate_world(seed=5, n_orders=1500)


@pytest.fixture(scope="session")
def small_fit(small_world):
    from training.fit import fit_recommender

    cfg = parse_pipeline_config(SMALL_PIPELINE)
    return fit_recommender(
        small_world.catalog, small_world.interactions, cfg, seed=2, ablations=False
    )
