"""The tiny world's known answer, and association values checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.candidates.base import CandidateQuery, TrainingData
from recsys.candidates.cf import CFCandidates
from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.item_knn import ItemKNNCandidates
from recsys.candidates.popular import PopularCandidates
from recsys.candidates.style_retrieval import StyleCandidates

from .conftest import N_CATS, PER, item_row


def style_of(row: int) -> int:
    return row // (N_CATS * PER)


def category_of(row: int) -> int:
    return (row // PER) % N_CATS


@pytest.mark.parametrize(
    "make",
    [
        lambda: CoPurchaseCandidates(min_support=2),
        lambda: CoPurchaseCandidates(min_support=2, score="npmi"),
        lambda: ItemKNNCandidates("bm25", K=20),
        lambda: CFCandidates("als", factors=8, iterations=10, fit_on="orders", seed=1),
        lambda: StyleCandidates(n_categories=1),
    ],
    ids=["co_purchase_lift", "co_purchase_npmi", "item_knn", "cf_als", "style"],
)
def test_top_complement_shares_style_and_differs_in_category(world: TrainingData, make) -> None:
    gen = make().fit(world)
    for style in range(3):
        basket = np.array([item_row(style, 0, 0)])  # "tile" of this style
        rows, _ = gen.generate([CandidateQuery(rows=basket)], 3)
        top = int(rows[0, 0])
        assert style_of(top) == style
        assert category_of(top) != 0
        assert category_of(top) == 1  # its complement ("grout")


def test_style_retrieval_follows_the_query_style_not_the_item(world: TrainingData) -> None:
    gen = StyleCandidates(n_categories=2).fit(world)
    basket = np.array([item_row(0, 2, 0)])  # a style-0 "sofa"
    wanted = np.zeros(3, np.float32)
    wanted[2] = 1.0  # ... but the style model read the basket as style 2
    rows, _ = gen.generate([CandidateQuery(rows=basket, style=wanted)], 5)
    assert all(style_of(int(r)) == 2 for r in rows[0] if r >= 0)
    assert category_of(int(rows[0, 0])) == 3  # sofa -> coffee table


def test_style_retrieval_without_styles_produces_nothing(world: TrainingData) -> None:
    from dataclasses import replace

    gen = StyleCandidates().fit(replace(world, item_styles=None))
    rows, scores = gen.generate([CandidateQuery(rows=np.array([0, 7]))], 4)
    assert (rows == -1).all() and np.isneginf(scores).all()


def test_style_retrieval_skips_out_of_stock(world: TrainingData) -> None:
    gen = StyleCandidates(n_categories=1).fit(world)
    rows, _ = gen.generate([CandidateQuery(rows=np.array([item_row(0, 0, 0)]))], 20)
    assert item_row(0, 1, 4) not in rows[0]  # out of stock in the world
    assert item_row(0, 1, 3) in rows[0]


def test_bad_style_vector_is_a_clear_error(world: TrainingData) -> None:
    gen = StyleCandidates().fit(world)
    with pytest.raises(ValueError, match="query.style must have 3 values"):
        gen.generate([CandidateQuery(rows=np.array([0]), style=np.ones(5))], 3)


def tiny_orders() -> TrainingData:
    # orders {0,1}, {0,1,2}, {0,2}, {3}; categories 0->0, 1->1, 2->1, 3->2
    x = sp.csr_matrix(
        np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 1, 0], [0, 0, 0, 1]], np.float32)
    )
    return TrainingData(
        orders=x,
        order_users=np.full(4, -1),
        order_ts=np.arange(4, dtype=np.int64) * 86_400,
        n_users=0,
        item_category=np.array([0, 1, 1, 2]),
        in_stock=np.ones(4, bool),
    )


def test_lift_and_npmi_by_hand() -> None:
    data = tiny_orders()
    co = CoPurchaseCandidates(min_support=1, score="lift").fit(data)
    # c0=3, c1=2, c2=2, N=4: lift(0,1) = 2*4/(3*2), lift(1,2) = 1*4/(2*2)
    assert co.scores_[0, 1] == pytest.approx(4 / 3)
    assert co.scores_[1, 2] == pytest.approx(1.0)
    assert co.scores_[0, 3] == 0.0
    mx, mean = co.item_lift(np.array([0, 1]), np.array([2, 3]))
    np.testing.assert_allclose(mx, [4 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(mean, [(4 / 3 + 1.0) / 2, 0.0], rtol=1e-6)
    npmi = CoPurchaseCandidates(min_support=1, score="npmi").fit(data)
    assert npmi.scores_[0, 1] == pytest.approx(np.log(4 / 3) / -np.log(0.5), rel=1e-6)
    # support threshold: the (1, 2) pair is seen once only
    strict = CoPurchaseCandidates(min_support=2, score="lift").fit(data)
    assert strict.scores_[1, 2] == 0.0 and strict.scores_[0, 1] == pytest.approx(4 / 3)


def test_category_complements_by_hand() -> None:
    co = CoPurchaseCandidates(min_support=1).fit(tiny_orders())
    # category presence per order: {0,1}, {0,1}, {0,1}, {2}; P(1|0)=1, P(1)=0.75
    np.testing.assert_allclose(co.category_conditional_[0], [1.0, 1.0, 0.0])
    np.testing.assert_allclose(co.category_complements_[0], [0.0, 0.25, 0.0])
    np.testing.assert_allclose(co.category_complements_[2], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(co.category_lift_[0, 1], 1 / 0.75, rtol=1e-6)
    np.testing.assert_allclose(
        co.category_complement(np.array([0]), np.array([1, 2, 3])), [0.25, 0.25, 0.0]
    )
    np.testing.assert_allclose(co.complementary_categories(np.array([1])), [0.25, 0.0, 0.0])


def test_max_neighbours_caps_each_row(world: TrainingData) -> None:
    co = CoPurchaseCandidates(min_support=1, max_neighbours=3).fit(world)
    assert np.diff(co.scores_.indptr).max() <= 3
    full = CoPurchaseCandidates(min_support=1, max_neighbours=1000).fit(world)
    # the kept three are the row's three best
    row = 0
    best = np.sort(full.scores_[row].data)[::-1][:3]
    np.testing.assert_allclose(np.sort(co.scores_[row].data)[::-1], best, rtol=1e-6)


def test_basket_solve_matches_implicit_recalculate_user(world: TrainingData) -> None:
    from implicit.als import AlternatingLeastSquares

    cf = CFCandidates("als", factors=8, iterations=5, fit_on="orders", seed=11, alpha=4.0).fit(
        world
    )
    x = sp.csr_matrix(world.orders, dtype=np.float32)
    x.data[:] = 1.0
    ref = AlternatingLeastSquares(
        factors=8,
        iterations=5,
        regularization=cf.regularization,
        alpha=4.0,
        random_state=11,
        num_threads=1,
        use_gpu=False,
    )
    ref.fit(x, show_progress=False)
    np.testing.assert_allclose(cf.item_factors_, ref.item_factors, rtol=1e-5, atol=1e-6)
    basket = np.array([item_row(1, 0, 0), item_row(1, 1, 2)])
    user_items = sp.csr_matrix((np.ones(2, np.float32), basket, [0, 2]), shape=(1, world.n_items))
    expected = ref.recalculate_user(0, user_items)
    np.testing.assert_allclose(cf.solve_user(basket), expected, rtol=1e-3, atol=1e-4)


def test_cf_known_user_without_basket_uses_their_factors(world: TrainingData) -> None:
    cf = CFCandidates("als", factors=8, iterations=5, fit_on="users", seed=2).fit(world)
    vectors, ok = cf.query_vectors(
        [
            CandidateQuery(rows=np.empty(0, np.int64), user_row=4),
            CandidateQuery(rows=np.empty(0, np.int64)),
        ]
    )
    np.testing.assert_array_equal(vectors[0], cf.user_factors_[4])
    assert ok.tolist() == [True, False]


def test_cf_auto_picks_users_or_orders(world: TrainingData) -> None:
    from dataclasses import replace

    assert CFCandidates(factors=4, iterations=1, fit_on="auto").fit(world).fit_on_ == "users"
    guests = replace(world, order_users=np.full(world.orders.shape[0], -1))
    assert CFCandidates(factors=4, iterations=1, fit_on="auto").fit(guests).fit_on_ == "orders"


def test_cf_queries_basket_alone_or_user_history(world: TrainingData) -> None:
    cf = CFCandidates("als", factors=8, iterations=5, fit_on="orders", seed=2).fit(world)
    basket = np.array([item_row(2, 0, 1)])
    user = 4
    history = np.unique(world.orders[np.flatnonzero(world.order_users == user)].indices)
    vectors, ok = cf.query_vectors(
        [
            CandidateQuery(rows=basket, user_row=user),  # a basket: the basket alone
            CandidateQuery(rows=np.empty(0, np.int64), user_row=user),  # no basket: the history
        ]
    )
    assert ok.all()
    np.testing.assert_allclose(vectors[0], cf.solve_user(basket), rtol=1e-6)
    counts = np.asarray(world.orders[np.flatnonzero(world.order_users == user)].sum(axis=0)).ravel()
    np.testing.assert_allclose(vectors[1], cf.solve_user(history, counts[history]), rtol=1e-5)


def test_popularity_windows_and_decay() -> None:
    data = tiny_orders()  # orders on days 0, 1, 2, 3; last = day 3
    pop = PopularCandidates(window_days=(2, 10), half_life_days=1.0).fit(data)
    # window 2 days: orders of days 2 and 3 ({0,2}, {3})
    np.testing.assert_array_equal(pop.popularity(2), [1, 0, 1, 1])
    np.testing.assert_array_equal(pop.popularity(10), [3, 2, 2, 1])
    # decayed: item 0 in orders aged 3, 2, 1 days -> 1/8 + 1/4 + 1/2
    assert pop.decayed_[0] == pytest.approx(0.875)
    assert pop.decayed_[3] == pytest.approx(1.0)
    rows, _ = pop.generate([CandidateQuery(rows=np.array([3]))], 2)
    assert rows[0].tolist() == [0, 2]  # 0.875 beats item 2 (ages 2, 1 -> 0.25 + 0.5)
    r, _ = pop.top_in_category(1, 5)
    assert r.tolist()[:2] == [2, 1]
    # categories 0 -> item 0, 1 -> items 1 and 2, 2 -> item 3; 10-day counts 3, 2, 2, 1
    np.testing.assert_allclose(pop.category_share(10), [1.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(pop.category_share(2), [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(KeyError, match="no window of 5 days"):
        pop.popularity(5)


def test_bad_hyperparameters_are_clear_errors(world: TrainingData) -> None:
    with pytest.raises(ValueError, match="weighting must be"):
        ItemKNNCandidates("jaccard").fit(world)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="score must be"):
        CoPurchaseCandidates(score="pmi").fit(world)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model must be"):
        CFCandidates(model="svd").fit(world)  # type: ignore[arg-type]


def test_item_lift_finds_a_pair_kept_by_either_item() -> None:
    # orders {0,1} x3, {0,2} x2, {0,3}, {4}: N=7, every pair with item 0 has lift 7/6
    x = np.zeros((7, 5), np.float32)
    x[:6, 0] = 1
    x[:3, 1] = 1
    x[3:5, 2] = 1
    x[5, 3] = 1
    x[6, 4] = 1
    data = TrainingData(
        orders=sp.csr_matrix(x),
        order_users=np.full(7, -1),
        order_ts=np.zeros(7, np.int64),
        n_users=0,
        item_category=np.zeros(5, np.int64),
        in_stock=np.ones(5, bool),
    )
    co = CoPurchaseCandidates(min_support=1, max_neighbours=1).fit(data)
    assert co.pair_counts_[0, 3] == 0 and co.pair_counts_[3, 0] == 1  # row 0 kept only item 1
    mx, mean = co.item_lift(np.array([0]), np.array([3, 4]))
    np.testing.assert_allclose(mx, [7 / 6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(mean, [7 / 6, 0.0], rtol=1e-6)


def test_look_categories_are_relative_to_the_most_tagged_category():
    from recsys.candidates.style_retrieval import look_categories

    # furniture-like 0.8 and 0.45 qualify (>= half of 0.8); tiles 0.1 and gloves 0 do not
    assert look_categories(np.array([0.8, 0.45, 0.1, 0.0])).tolist() == [True, True, False, False]
    # a catalog that tags little overall still has its look categories
    assert look_categories(np.array([0.2, 0.02])).tolist() == [True, False]
    assert not look_categories(np.zeros(3)).any()
