"""AnnIndex: exact path, approximate recall against exact, exclusions, groups, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.candidates.ann_index import AnnIndex


def random_factors(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Factor-like random vectors: 64 random clusters (fixed), varied norms."""
    centres = np.random.default_rng(12345).standard_normal((64, d)).astype(np.float32) * 2
    rng = np.random.default_rng(seed)
    v = centres[rng.integers(64, size=n)] + rng.standard_normal((n, d)).astype(np.float32)
    return v * rng.lognormal(0.0, 0.5, (n, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return random_factors(20_000, 32)


def test_auto_is_exact_below_threshold_and_matches_brute_force(vectors: np.ndarray) -> None:
    idx = AnnIndex(exact_threshold=50_000).fit(vectors)
    assert idx.kind_ == "flat"
    q = random_factors(5, 32, seed=1)
    rows, scores = idx.search(q, 10)
    brute = q @ vectors.T
    expected = np.argsort(-brute, axis=1)[:, :10]
    np.testing.assert_array_equal(rows, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected, 1), rtol=1e-4)
    assert idx.recall_against_exact(q, 10) == 1.0


@pytest.mark.parametrize("approximate", ["hnsw", "ivf"])
def test_approximate_recall_against_exact_is_at_least_0_9(
    vectors: np.ndarray, approximate: str
) -> None:
    idx = AnnIndex(
        kind="auto",
        exact_threshold=10_000,
        approximate=approximate,
        ef_construction=40,
        ef_search=400,
        nprobe=64,
    ).fit(vectors)
    assert idx.kind_ == approximate
    q = random_factors(100, 32, seed=2)
    assert idx.recall_against_exact(q, 50) >= 0.9
    # scores are true inner products, best first
    rows, scores = idx.search(q[:3], 20)
    np.testing.assert_allclose(
        scores, np.einsum("nd,nkd->nk", q[:3], vectors[rows]), rtol=1e-4, atol=1e-4
    )
    assert np.all(np.diff(scores, axis=1) <= 0)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_exclusions_are_honoured_by_over_fetching(vectors: np.ndarray, kind: str) -> None:
    small = vectors[:2_000]
    idx = AnnIndex(kind=kind, nlist=16, nprobe=16).fit(small)
    q = random_factors(2, 32, seed=3)
    top, _ = idx.search(q, 30)
    exclude = [top[0, :25], np.empty(0, np.int64)]
    rows, _ = idx.search(q, 30, exclude=exclude)
    assert not np.isin(rows[0], top[0, :25]).any()
    assert (rows[0] >= 0).all(), "over-fetch keeps the list full"
    np.testing.assert_array_equal(rows[1], top[1])


def test_k_larger_than_index_is_padded() -> None:
    idx = AnnIndex().fit(random_factors(7, 4))
    rows, scores = idx.search(
        random_factors(2, 4, seed=1), 10, exclude=[np.array([0, 1]), np.array([], np.int64)]
    )
    assert rows.shape == (2, 10)
    assert (rows[0, 5:] == -1).all() and (rows[0, :5] >= 0).all()
    assert (rows[1, 7:] == -1).all() and np.isneginf(scores[1, 7:]).all()


def test_group_search_stays_inside_the_group() -> None:
    v = random_factors(300, 8)
    groups = np.arange(300) % 4
    groups[:10] = -1
    idx = AnnIndex().fit(v, groups=groups)
    q = random_factors(1, 8, seed=5)
    rows, scores = idx.search(q, 20, exclude=[np.array([2, 6])], group=2)
    assert (groups[rows[0]] == 2).all()
    assert not np.isin(rows[0], [2, 6]).any()
    in_group = np.flatnonzero(groups == 2)
    in_group = in_group[~np.isin(in_group, [2, 6])]
    best = in_group[np.argsort(-(v[in_group] @ q[0]))[:20]]
    np.testing.assert_array_equal(rows[0], best)
    missing, _ = idx.search(q, 5, group=99)
    assert (missing == -1).all()
    # the one-query path the style generator takes gives the same rows and scores, unpadded
    one_rows, one_scores = idx.search_group(q[0], 20, np.array([2, 6]), 2)
    np.testing.assert_array_equal(one_rows, rows[0])
    np.testing.assert_array_equal(one_scores, scores[0])
    few_rows, _ = idx.search_group(q[0], 500, np.array([2, 6]), 2)  # more than the group holds
    np.testing.assert_array_equal(np.sort(few_rows), np.sort(in_group))
    assert idx.search_group(q[0], 5, np.empty(0, np.int64), 99)[0].size == 0


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_roundtrip(tmp_path, kind: str) -> None:
    v = random_factors(1_000, 16)
    idx = AnnIndex(kind=kind, nlist=8).fit(v, groups=np.arange(1_000) % 3)
    idx.save(tmp_path)
    back = AnnIndex.load(tmp_path)
    q = random_factors(4, 16, seed=9)
    for group in (None, 1):
        a = idx.search(q, 15, group=group)
        b = back.search(q, 15, group=group)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        AnnIndex(kind="lsh").fit(random_factors(5, 3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="NaN"):
        AnnIndex().fit(np.full((3, 2), np.nan, np.float32))
    idx = AnnIndex().fit(random_factors(5, 3))
    with pytest.raises(ValueError, match="3 columns"):
        idx.search(np.zeros((1, 4), np.float32), 2)
