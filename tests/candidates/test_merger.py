"""CandidateMerger (the merge the service runs): relative-rank interleaving, dedupe,
exclusions, filters, and the per-source records."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.candidates.base import CandidateQuery, TrainingData
from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.item_knn import ItemKNNCandidates
from recsys.candidates.merger import CandidateMerger
from recsys.candidates.popular import PopularCandidates

from .conftest import sample_queries


def out(rows: list[int], k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    r = np.full((1, k), -1, np.int64)
    s = np.full((1, k), -np.inf, np.float32)
    r[0, : len(rows)] = rows
    s[0, : len(rows)] = np.linspace(1.0, 0.5, len(rows))
    return r, s


def test_relative_rank_interleaving_dedupe_and_cap() -> None:
    q = [CandidateQuery(rows=np.array([9]), exclude=np.array([8]))]
    merger = CandidateMerger(quotas={"a": 4, "b": 6}, total=5)
    # a (4 slots) keys: 1 -> .125, 2 -> .375, 3 -> .625, 9 -> basket; b (6 slots): 2 -> .083,
    # 4 -> .25, 8 -> excluded, 5 -> .583, 6 -> .75. Best keys first, 2 keeps its best key.
    merged = merger.merge(
        q, {"a": out([1, 2, 3, 9], k=4), "b": out([2, 4, 8, 5, 6], k=6)}, np.ones(20, bool)
    )[0]
    assert merged.rows.tolist() == [2, 1, 4, 5, 3]
    assert merged.sources == ("a", "b")
    # row 2 was proposed by both: a's rank 2, b's rank 1
    i = merged.rows.tolist().index(2)
    assert merged.ranks[i].tolist() == [2.0, 1.0]
    assert merged.produced_by()[i] == ("a", "b")
    assert np.isnan(merged.scores[merged.rows.tolist().index(1), 1])
    assert merged.scores[merged.rows.tolist().index(1), 0] == pytest.approx(1.0)


def test_stock_and_exclusions_are_dropped() -> None:
    q = [CandidateQuery(rows=np.array([1]), exclude=np.array([3]))]
    stock = np.ones(10, bool)
    stock[4] = False
    merged = CandidateMerger(quotas={"a": 10}, total=10).merge(
        q, {"a": out([1, 2, 3, 4, 5])}, stock
    )[0]
    assert merged.rows.tolist() == [2, 5]
    # ranks are positions in the source's own list (before filtering)
    assert merged.ranks[:, 0].tolist() == [2.0, 5.0]


def test_one_filter_mask_per_query() -> None:
    qs = [CandidateQuery(rows=np.array([0])), CandidateQuery(rows=np.array([0]))]
    only_odd = np.arange(10) % 2 == 1
    merged = CandidateMerger(quotas={"a": 5}, total=5).merge(
        qs,
        {"a": (np.array([[1, 2, 3, 4, 5], [1, 2, 3, 4, 5]]), np.ones((2, 5), np.float32))},
        [only_odd, None],
    )
    assert merged[0].rows.tolist() == [1, 3, 5]
    assert merged[1].rows.tolist() == [1, 2, 3, 4, 5]
    assert merged.query_ptr.tolist() == [0, 3, 8]


def test_unknown_source_and_bad_shapes_are_clear_errors() -> None:
    q = [CandidateQuery(rows=np.array([1]))]
    merger = CandidateMerger(quotas={"a": 3})
    with pytest.raises(ValueError, match="no quota for sources"):
        merger.merge(q, {"zzz": out([1])})
    with pytest.raises(ValueError, match="source 'a' must give"):
        merger.merge(q, {"a": (np.zeros((2, 3), np.int64), np.zeros((2, 3), np.float32))})


def test_with_real_generators(world: TrainingData) -> None:
    gens = {
        "item_knn": ItemKNNCandidates(K=20).fit(world),
        "co_purchase": CoPurchaseCandidates().fit(world),
        "popular": PopularCandidates().fit(world),
    }
    merger = CandidateMerger(quotas={"item_knn": 10, "co_purchase": 10, "popular": 5}, total=20)
    queries = sample_queries(world)
    merged = merger.generate(gens, queries, world.in_stock)
    assert len(merged) == len(queries)
    for q, m in zip(queries, merged, strict=True):
        assert len(m) <= 20 and np.unique(m.rows).size == len(m)
        assert not np.isin(m.rows, q.rows).any() and not np.isin(m.rows, q.exclude).any()
        assert world.in_stock[m.rows].all()
        assert m.scores.shape == m.ranks.shape == (len(m), 3)
        assert (~np.isnan(m.scores)).any(axis=1).all(), "every candidate has a source"
        assert np.array_equal(np.isnan(m.scores), np.isnan(m.ranks))


@settings(max_examples=150, deadline=None)
@given(
    lists=st.lists(st.lists(st.integers(0, 29), max_size=12), min_size=1, max_size=4),
    basket=st.lists(st.integers(0, 29), max_size=3),
    exclude=st.lists(st.integers(0, 29), max_size=3),
    out_of_stock=st.lists(st.integers(0, 29), max_size=3),
    quotas=st.lists(st.integers(0, 6), min_size=4, max_size=4),
    total=st.integers(0, 20),
)
def test_merge_properties(lists, basket, exclude, out_of_stock, quotas, total) -> None:
    names = [f"s{i}" for i in range(len(lists))]
    outputs = {}
    for name, rows in zip(names, lists, strict=False):
        rows = list(dict.fromkeys(rows))  # a generator never repeats a row
        outputs[name] = out(rows, k=max(len(rows), 1))
    stock = np.ones(30, bool)
    stock[out_of_stock] = False
    q = CandidateQuery(rows=np.array(basket, np.int64), exclude=np.array(exclude, np.int64))
    merger = CandidateMerger(quotas=dict(zip(names, quotas, strict=False)), total=total)
    m = merger.merge([q], outputs, stock)[0]
    proposed = set().union(*[set(r) for r in lists])
    assert set(m.rows.tolist()) <= proposed, "output is a subset of the input"
    assert len(m) <= total and np.unique(m.rows).size == len(m)
    assert not set(m.rows.tolist()) & (set(basket) | set(exclude) | set(out_of_stock))
    allowed = proposed - set(basket) - set(exclude) - set(out_of_stock)
    assert len(m) == min(total, len(allowed)), "fills up to total when it can"
    active = [n for n in names if n in outputs]
    for i, row in enumerate(m.rows):
        for j, name in enumerate(active):
            listed = list(dict.fromkeys(lists[names.index(name)]))
            if row in listed:
                assert m.ranks[i, j] == listed.index(row) + 1
            else:
                assert np.isnan(m.ranks[i, j]) and np.isnan(m.scores[i, j])

    # best relative rank first: every kept row's key is <= every dropped allowed row's key
    def key(row: int) -> float:
        return min(
            (lst.index(row) + 0.5) / max(len(lst), 1) + j * 1e-6
            for j, lst in enumerate(list(dict.fromkeys(x)) for x in lists)
            if row in lst
        )

    keys = [key(int(r)) for r in m.rows]
    assert keys == sorted(keys)
    dropped = allowed - set(m.rows.tolist())
    if dropped and len(m):
        assert max(keys) <= min(key(r) for r in dropped)
