"""Metric functions against hand-computed values, and properties that hold for any input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from training import metrics as M


def test_hand_computed_values():
    rec = ["a", "b", "c", "d"]
    rel = ["c", "x"]
    assert M.recall_at_k(rec, rel, 3) == 0.5
    assert M.recall_at_k(rec, rel, 2) == 0.0
    assert M.hit_rate_at_k(rec, rel, 3) == 1.0
    assert M.mrr(rec, rel) == pytest.approx(1 / 3)
    assert M.mrr(rec, rel, k=2) == 0.0
    # DCG = 1/log2(4); ideal = 1/log2(2) + 1/log2(3)
    assert M.ndcg_at_k(rec, rel, 4) == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert M.ndcg_at_k(["c", "x"], rel, 2) == pytest.approx(1.0)
    assert M.catalog_coverage([["a", "b"], ["b", "c"]], 10) == pytest.approx(0.3)
    cats = {"a": "paint", "b": "tape", "c": None, "d": "paint"}
    assert M.cross_category_share(
        [["a", "b", "c"], ["d"]], [{"paint"}, {"tape"}], cats
    ) == pytest.approx(2 / 3)
    styles = {"a": "loft", "b": "boho", "c": None, "d": "loft"}
    # basket 1: a, b styled -> 1/2 loft ; basket 2 has no true style -> skipped
    assert M.style_coherence([["a", "b", "c"], ["d"]], ["loft", None], styles) == 0.5
    assert M.accessory_recall([["g", "t"], ["x"], []], [["g", "b"], ["x"], []]) == pytest.approx(
        2 / 3
    )
    assert M.mean_metric(M.recall_at_k, [["a"], ["b"]], [["a"], []], 1) == 1.0


def test_empty_inputs_are_zero():
    assert M.recall_at_k(["a"], [], 5) == 0.0
    assert M.ndcg_at_k([], ["a"], 5) == 0.0
    assert M.catalog_coverage([], 0) == 0.0
    assert M.style_coherence([], [], {}) == 0.0
    assert M.accessory_recall([[]], [[]]) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        M.recall_at_k(["a"], ["a"], 0)


ids = st.lists(st.integers(0, 30), max_size=15)


@given(rec=ids, rel=ids, k=st.integers(1, 20))
def test_accuracy_metrics_are_in_unit_interval(rec, rel, k):
    for fn in (M.recall_at_k, M.ndcg_at_k, M.hit_rate_at_k, M.mrr):
        v = fn(rec, rel, k)
        assert 0.0 <= v <= 1.0 + 1e-12


@given(rec=ids, rel=ids, k=st.integers(1, 20))
def test_recall_monotone_in_k_and_perfect_list_scores_one(rec, rel, k):
    assert M.recall_at_k(rec, rel, k) <= M.recall_at_k(rec, rel, k + 5) + 1e-12
    uniq = list(dict.fromkeys(rel))
    if uniq:
        assert M.recall_at_k(uniq, uniq, len(uniq)) == 1.0
        assert M.ndcg_at_k(uniq, uniq, len(uniq)) == pytest.approx(1.0)


@given(lists=st.lists(ids, max_size=6), n=st.integers(1, 40))
def test_coverage_and_shares_in_unit_interval(lists, n):
    assert 0.0 <= M.catalog_coverage(lists, n) <= 1.0
    cats = {i: i % 3 for lst in lists for i in lst}
    assert 0.0 <= M.cross_category_share(lists, [{0}] * len(lists), cats) <= 1.0
    styles = {i: ("loft" if i % 2 else None) for lst in lists for i in lst}
    assert 0.0 <= M.style_coherence(lists, ["loft"] * len(lists), styles) <= 1.0
    assert 0.0 <= M.accessory_recall(lists, lists[::-1]) <= 1.0
