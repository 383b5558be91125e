"""The contract every candidate generator honours (after implicit's shared model tests)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from recsys.candidates.base import PAD_ROW, CandidateGenerator, CandidateQuery, TrainingData
from recsys.candidates.cf import CFCandidates
from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.ease import EASECandidates
from recsys.candidates.item_knn import ItemKNNCandidates
from recsys.candidates.popular import PopularCandidates
from recsys.candidates.repeat import RepeatPurchaseCandidates
from recsys.candidates.rp3beta import RP3betaCandidates
from recsys.candidates.style_retrieval import StyleCandidates

from .conftest import sample_queries

FACTORIES: dict[str, Callable[[], CandidateGenerator]] = {
    "item_knn_bm25": lambda: ItemKNNCandidates("bm25", K=20),
    "item_knn_tfidf": lambda: ItemKNNCandidates("tfidf", K=20),
    "item_knn_cosine": lambda: ItemKNNCandidates("cosine", K=20),
    "cf_als_orders": lambda: CFCandidates("als", factors=8, iterations=5, fit_on="orders", seed=3),
    "cf_als_users": lambda: CFCandidates("als", factors=8, iterations=5, fit_on="users", seed=3),
    "cf_als_hnsw": lambda: CFCandidates("als", factors=8, iterations=5, seed=3, ann_kind="hnsw"),
    "cf_bpr": lambda: CFCandidates("bpr", factors=8, iterations=20, fit_on="orders", seed=3),
    "co_purchase_lift": lambda: CoPurchaseCandidates(min_support=2, score="lift"),
    "co_purchase_npmi_max": lambda: CoPurchaseCandidates(
        min_support=1, score="npmi", aggregate="max"
    ),
    "popular": lambda: PopularCandidates(window_days=(7, 30), half_life_days=10),
    "style": lambda: StyleCandidates(n_categories=2),
    "ease_dense": lambda: EASECandidates(l2=20.0),
    "ease_local": lambda: EASECandidates(l2=20.0, max_dense_items=5, neighbours=8),
    "rp3beta": lambda: RP3betaCandidates(alpha=0.8, beta=0.3, neighbours=15),
    "repeat": lambda: RepeatPurchaseCandidates(max_items_per_user=5),
}


@pytest.fixture(scope="module", params=sorted(FACTORIES))
def fitted(request: pytest.FixtureRequest, world: TrainingData) -> tuple[str, CandidateGenerator]:
    return request.param, FACTORIES[request.param]().fit(world)


def test_shapes_types_order_and_no_duplicates(fitted, world: TrainingData) -> None:
    _, gen = fitted
    queries = sample_queries(world)
    rows, scores = gen.generate(queries, 10)
    assert rows.shape == scores.shape == (len(queries), 10)
    assert rows.dtype == np.int64 and scores.dtype == np.float32
    for r, s in zip(rows, scores, strict=True):
        valid = r != PAD_ROW
        n = int(valid.sum())
        assert valid[:n].all() and not valid[n:].any(), "padding only at the end"
        assert np.isneginf(s[n:]).all() and np.isfinite(s[:n]).all()
        assert np.all(np.diff(s[:n]) <= 0), "best first"
        assert np.unique(r[:n]).size == n
        assert ((r[:n] >= 0) & (r[:n] < world.n_items)).all()
    # every generator proposes something for a real basket
    assert (rows[1:] != PAD_ROW).any()


def test_basket_and_excluded_rows_never_returned(fitted, world: TrainingData) -> None:
    _, gen = fitted
    queries = sample_queries(world, n=20, seed=5)
    rows, _ = gen.generate(queries, world.n_items)
    for q, r in zip(queries, rows, strict=True):
        assert not np.isin(r, q.rows).any()
        assert not np.isin(r, q.exclude).any()


def test_batch_equals_single(fitted, world: TrainingData) -> None:
    _, gen = fitted
    queries = sample_queries(world)
    rows, scores = gen.generate(queries, 15)
    for i, q in enumerate(queries):
        r1, s1 = gen.generate([q], 15)
        np.testing.assert_array_equal(r1[0], rows[i])
        np.testing.assert_allclose(s1[0], scores[i], rtol=1e-5)


def test_k_larger_than_catalog_is_padded(fitted, world: TrainingData) -> None:
    _, gen = fitted
    queries = sample_queries(world, n=4)
    k = world.n_items + 25
    rows, scores = gen.generate(queries, k)
    assert rows.shape == (4, k)
    for q, r in zip(queries, rows, strict=True):
        n_valid = int((r != PAD_ROW).sum())
        assert n_valid <= world.n_items - np.unique(np.concatenate([q.rows, q.exclude])).size
    assert (rows[:, world.n_items :] == PAD_ROW).all()
    assert gen.generate(queries, 0)[0].shape == (4, 0)
    assert gen.generate([], 5)[0].shape == (0, 5)


def test_save_load_gives_identical_output(fitted, world: TrainingData, tmp_path) -> None:
    name, gen = fitted
    gen.save(tmp_path / name)
    loaded = type(gen).load(tmp_path / name)
    queries = sample_queries(world)
    r0, s0 = gen.generate(queries, 12)
    r1, s1 = loaded.generate(queries, 12)
    np.testing.assert_array_equal(r0, r1)
    np.testing.assert_array_equal(s0, s1)
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))


def test_same_seed_reproduces(fitted, world: TrainingData) -> None:
    name, gen = fitted
    again = FACTORIES[name]().fit(world)
    queries = sample_queries(world)
    r0, s0 = gen.generate(queries, 12)
    r1, s1 = again.generate(queries, 12)
    np.testing.assert_array_equal(r0, r1)
    np.testing.assert_array_equal(s0, s1)


def test_bad_k_is_a_clear_error(fitted, world: TrainingData) -> None:
    _, gen = fitted
    with pytest.raises(ValueError, match="k must be"):
        gen.generate([CandidateQuery(rows=np.array([0]))], -1)
