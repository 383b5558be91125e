"""Known answers for EASE and RP3beta on matrices small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.candidates.base import PAD_ROW, CandidateQuery, TrainingData
from recsys.candidates.ease import EASECandidates
from recsys.candidates.item_knn import ItemKNNCandidates
from recsys.candidates.pair_scores import top_k_of
from recsys.candidates.rp3beta import RP3betaCandidates
from recsys.candidates.topk import top_k_dense

from .conftest import make_world, sample_queries

# 5 orders x 4 items; item 3 is never bought
X = np.array(
    [
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [0, 1, 1, 0],
        [1, 0, 0, 0],
        [0, 0, 1, 0],
    ],
    dtype=np.float32,
)


def tiny_data(x: np.ndarray) -> TrainingData:
    n_orders, n_items = x.shape
    return TrainingData(
        orders=sp.csr_matrix(x * 3.0),  # quantities are binarised by the generators
        order_users=np.full(n_orders, -1, np.int64),
        order_ts=np.arange(n_orders, dtype=np.int64),
        n_users=0,
        item_category=np.full(n_items, -1, np.int64),
        in_stock=np.ones(n_items, bool),
    )


def ease_by_hand(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck's closed form written out: B = -P / diag(P) column-wise, diag 0."""
    g = x.T.astype(np.float64) @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def test_ease_weights_match_the_closed_form() -> None:
    gen = EASECandidates(l2=2.0).fit(tiny_data(X))
    assert gen.variant_ == "dense"
    np.testing.assert_array_equal(gen.items_, [0, 1, 2])  # the never-bought item takes no part
    expected = ease_by_hand(X[:, :3], 2.0)
    np.testing.assert_allclose(gen.weights_, expected, rtol=1e-6, atol=1e-7)
    assert np.all(np.diag(gen.weights_) == 0.0)
    # G = [[3,2,1],[2,3,2],[1,2,3]] + 2I; B[1,0] = -P10/P00 worked out with cofactors
    # (P ∝ adj(G+2I): adj00 = 5*5-2*2 = 21, adj10 = -(2*5-2*1) = -8, so B[1,0] = 8/21)
    assert gen.weights_[1, 0] == pytest.approx(8 / 21, rel=1e-6)


def test_ease_scores_are_x_dot_b() -> None:
    gen = EASECandidates(l2=2.0).fit(tiny_data(X))
    b = ease_by_hand(X[:, :3], 2.0)
    rows, scores = gen.generate([CandidateQuery(rows=np.array([0, 2]))], 4)
    expected = b[0] + b[2]  # binary basket {0, 2}: only item 1 may come back
    assert rows[0, 0] == 1 and (rows[0, 1:] == PAD_ROW).all()
    assert scores[0, 0] == pytest.approx(expected[1], rel=1e-6)
    rows, scores = gen.generate([CandidateQuery(rows=np.array([0]))], 4)
    assert b[0, 1] > b[0, 2]  # item 1 is bought with 0 twice, item 2 once
    np.testing.assert_array_equal(rows[0], [1, 2, PAD_ROW, PAD_ROW])
    np.testing.assert_allclose(scores[0, :2], b[0, [1, 2]], rtol=1e-6)
    # a basket of only unknown / never-bought items has no EASE signal
    rows, _ = gen.generate([CandidateQuery(rows=np.array([3]))], 4)
    assert (rows == PAD_ROW).all()


def test_ease_local_equals_dense_when_every_pair_is_bought_together() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((80, 9)) < 0.3).astype(np.float32)
    x[0] = 1.0  # one order with every item: every pair co-occurs
    data = tiny_data(x)
    dense = EASECandidates(l2=4.0).fit(data)
    local = EASECandidates(l2=4.0, max_dense_items=3, neighbours=8).fit(data)
    assert dense.variant_ == "dense" and local.variant_ == "local"
    np.testing.assert_allclose(local.weights_.toarray(), dense.weights_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense.weights_, ease_by_hand(x, 4.0), rtol=1e-5, atol=1e-6)
    # fewer neighbours than co-bought items: sparser, and each column keeps at most that many
    pruned = EASECandidates(l2=4.0, max_dense_items=3, neighbours=3).fit(data)
    assert np.diff(pruned.weights_.tocsc().indptr).max() <= 3


def test_ease_threshold_above_catalog_gives_the_dense_model() -> None:
    world = make_world()
    default = EASECandidates(l2=30.0).fit(world)
    roomy = EASECandidates(l2=30.0, max_dense_items=world.n_items, neighbours=3).fit(world)
    assert default.variant_ == roomy.variant_ == "dense"
    queries = sample_queries(world)
    for a, b in zip(default.generate(queries, 10), roomy.generate(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_ease_local_ranks_like_dense_on_the_sample_world() -> None:
    world = make_world()
    dense = EASECandidates(l2=30.0).fit(world)
    local = EASECandidates(l2=30.0, max_dense_items=10, neighbours=40).fit(world)
    queries = sample_queries(world, n=40, seed=9)[1:]
    d, _ = dense.generate(queries, 5)
    s, _ = local.generate(queries, 5)
    overlap = np.mean([np.intersect1d(a, b).size / 5 for a, b in zip(d, s, strict=True)])
    assert overlap >= 0.8


def test_rp3beta_weights_by_hand() -> None:
    # orders {0,1}, {0,1,2}, {1,2}, {0}, {2}; alpha = 1: P_ui[o, i] = 1/|o|, P_iu[i, o] = 1/pop_i
    # W[0, 1] = sum over orders holding 0 and 1 of (1/pop_0)(1/|o|) = (1/3)(1/2 + 1/3) = 5/18
    # then divided by pop_1^beta = 3^0.5
    gen = RP3betaCandidates(alpha=1.0, beta=0.5, neighbours=10).fit(tiny_data(X))
    w = gen.weights_.toarray()
    assert w[0, 1] == pytest.approx(5 / 18 / np.sqrt(3), rel=1e-6)
    assert w[0, 2] == pytest.approx((1 / 3) * (1 / 3) / np.sqrt(3), rel=1e-6)
    assert w[1, 0] == pytest.approx((1 / 3) * (1 / 2 + 1 / 3) / np.sqrt(3), rel=1e-6)
    assert np.all(np.diag(w) == 0.0) and np.all(w[:, 3] == 0.0) and np.all(w[3] == 0.0)
    # alpha sharpens each transition probability before the walk: (1/3)^2 (1/2^2 + 1/3^2)
    sharp = (
        RP3betaCandidates(alpha=2.0, beta=0.0, neighbours=10).fit(tiny_data(X)).weights_.toarray()
    )
    assert sharp[0, 1] == pytest.approx((1 / 9) * (1 / 4 + 1 / 9), rel=1e-6)


def test_rp3beta_keeps_the_top_neighbours_and_scores_x_dot_w() -> None:
    full = (
        RP3betaCandidates(alpha=1.0, beta=0.5, neighbours=10).fit(tiny_data(X)).weights_.toarray()
    )
    one = RP3betaCandidates(alpha=1.0, beta=0.5, neighbours=1).fit(tiny_data(X))
    w = one.weights_.toarray()
    for i in range(3):
        assert np.count_nonzero(w[i]) == 1 and w[i].argmax() == full[i].argmax()
    gen = RP3betaCandidates(alpha=1.0, beta=0.5, neighbours=10).fit(tiny_data(X))
    rows, scores = gen.generate([CandidateQuery(rows=np.array([0, 2]))], 3)
    assert rows[0, 0] == 1 and scores[0, 0] == pytest.approx(full[0, 1] + full[2, 1], rel=1e-6)


def test_top_k_dense_breaks_ties_by_the_smaller_column() -> None:
    s = np.array([[1.0, 3.0, 3.0, -np.inf, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]], np.float32)
    cols, vals = top_k_dense(s, 2)
    np.testing.assert_array_equal(cols, [[1, 2], [0, 1]])
    np.testing.assert_array_equal(vals, [[3.0, 3.0], [2.0, 2.0]])
    cols, vals = top_k_dense(s, 8)
    np.testing.assert_array_equal(cols[0], [1, 2, 4, 0, 5, PAD_ROW, PAD_ROW, PAD_ROW])
    assert np.isneginf(vals[0, 5:]).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: EASECandidates(l2=5.0),
        lambda: EASECandidates(l2=5.0, max_dense_items=10, neighbours=15),  # the local variant
        lambda: RP3betaCandidates(alpha=1.0, beta=0.5, neighbours=20),
        lambda: ItemKNNCandidates("bm25", K=20),
    ],
    ids=["ease_dense", "ease_local", "rp3beta", "item_knn"],
)
@pytest.mark.parametrize("n_queries", [12, 40], ids=["serving_batch", "training_batch"])
def test_pair_scores_equal_the_generated_scores(make, n_queries: int) -> None:
    """What the ranker reads for a candidate EASE/RP3beta did not propose is the same x·W the
    generator ranks by: scoring its own proposals gives back its own scores, bit for bit, on
    the few-basket path (serving) and the product path (training, batch scoring) alike."""
    world = make_world()
    gen = make().fit(world)
    queries = sample_queries(world, n=n_queries, seed=2)
    rows, scores = gen.generate(queries, 25)
    q_of, col = np.nonzero(rows != PAD_ROW)
    got = gen.score_pairs(queries, q_of, rows[q_of, col])
    np.testing.assert_array_equal(got, scores[q_of, col])
    # the serving path: each basket's whole score row, computed once, gives the same lists
    # and the same score for every pair
    kept = [gen.basket_scores(q) for q in queries]
    np.testing.assert_array_equal(top_k_of(kept, queries, 25)[0], rows)
    np.testing.assert_array_equal(top_k_of(kept, queries, 25)[1], scores)
    others = np.random.default_rng(3).integers(0, world.orders.shape[1], (len(queries), 30))
    q_all = np.repeat(np.arange(len(queries)), 30)
    looked_up = np.concatenate([k.at(o) for k, o in zip(kept, others, strict=True)])
    np.testing.assert_array_equal(looked_up, gen.score_pairs(queries, q_all, others.ravel()))
    assert np.count_nonzero(looked_up) > 0  # the random rows do hit scored items
    # an item outside the catalogue, or never bought, scores 0 rather than failing
    assert gen.score_pairs(queries[:1], np.array([0]), np.array([10**6]))[0] == 0.0
    assert kept[0].at(np.array([10**6]))[0] == 0.0
