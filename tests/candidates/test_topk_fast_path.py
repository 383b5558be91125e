"""The serving fast paths of ``recsys.candidates.topk`` give bit-identical results to the
sparse-product path they replace for small batches (random matrices with explicit zeros,
negative values, duplicate and out-of-range basket rows)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.candidates.base import CandidateQuery
from recsys.candidates.topk import (
    LOOP_EXCLUDE,
    SMALL_EXCLUDE,
    basket_matrix,
    basket_row_sums,
    not_in,
    top_k_basket_sums,
    top_k_sparse,
)


def _matrix(rng: np.random.Generator, n: int, dtype: type) -> sp.csr_matrix:
    m = sp.random(
        n,
        n,
        density=float(rng.uniform(0.02, 0.3)),
        format="csr",
        dtype=np.float64,
        random_state=int(rng.integers(1 << 30)),
    )
    m.data = rng.normal(size=m.data.size) * 10.0 ** rng.uniform(-3, 3, size=m.data.size)
    m.data[rng.random(m.data.size) < 0.1] = 0.0  # explicit zeros stay stored
    return sp.csr_matrix(m, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_basket_row_sums_equal_the_csr_product(dtype: type) -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(3, 200))
        mat = _matrix(rng, n, dtype)
        basket = rng.integers(-2, n + 2, size=int(rng.integers(0, 15)))  # duplicates, out of range
        ref = (basket_matrix([CandidateQuery(rows=basket)], n) @ mat).tocsr()
        order = np.argsort(ref.indices)
        ref_cols, ref_vals = ref.indices[order], ref.data[order]
        cols, vals = basket_row_sums(mat, basket)
        keep = ref_vals != 0
        np.testing.assert_array_equal(cols, ref_cols[keep])
        assert vals.dtype == ref_vals.dtype
        np.testing.assert_array_equal(vals, ref_vals[keep])  # exact, not approximately


def test_top_k_basket_sums_equal_top_k_of_the_product() -> None:
    rng = np.random.default_rng(4)
    for _ in range(60):
        n = int(rng.integers(3, 200))
        mat = _matrix(rng, n, np.float32)
        queries = [
            CandidateQuery(
                rows=rng.integers(0, n, size=int(rng.integers(0, 10))),
                exclude=rng.integers(0, n, size=int(rng.integers(0, 50))),
            )
            for _ in range(int(rng.integers(1, 20)))  # both sides of SMALL_BATCH
        ]
        k = int(rng.integers(1, 60))
        rows, scores = top_k_basket_sums(mat, queries, k)
        ref_rows, ref_scores = top_k_sparse(basket_matrix(queries, n) @ mat, queries, k)
        np.testing.assert_array_equal(rows, ref_rows)
        np.testing.assert_array_equal(scores, ref_scores)


def test_not_in_matches_isin_on_both_sides_of_the_cut() -> None:
    rng = np.random.default_rng(5)
    for size in (0, 1, LOOP_EXCLUDE, LOOP_EXCLUDE + 1, SMALL_EXCLUDE, SMALL_EXCLUDE + 1, 200):
        for dtype in (np.int64, np.int16):  # catalog rows, category codes
            rows = rng.integers(-1, 100, size=300).astype(dtype)
            exclude = rng.integers(-1, 100, size=size).astype(np.int64)
            np.testing.assert_array_equal(not_in(rows, exclude), ~np.isin(rows, exclude))
