"""The one-request fast paths of the feature definitions (popularity from a per-item block at the
model's reference time, co-purchase lift of one basket on a dense grid) give exactly the values
of the general batch path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from feature_store.definitions import DAY, POPULARITY_WINDOWS, FeatureContext
from recsys.candidates.merger import MergedBatch
from recsys.recommendation import BasketLine, Filters, RecommendationRequest

pytestmark = pytest.mark.slow  # uses the small fitted pipeline


def _requests(rec, n: int = 12) -> list[RecommendationRequest]:  # noqa: ANN001
    rng = np.random.default_rng(0)
    skus = [str(s) for s in rec.catalog.skus]
    return [
        RecommendationRequest(
            basket=tuple(
                BasketLine(skus[int(r)], int(rng.integers(1, 3)))
                for r in rng.choice(len(skus), int(rng.integers(1, 9)), replace=False)
            ),
            filters=Filters(in_stock=False),
        )
        for _ in range(n)
    ]


def test_one_request_features_equal_the_batch_path(small_fit) -> None:  # noqa: ANN001
    rec = small_fit.recommender
    prepared = rec.prepare(_requests(rec))
    merged = rec.candidates(prepared)
    together = rec.candidate_batch(prepared, merged)  # several baskets: the general path
    X_all = rec.features.compute(together)
    checked = 0
    for q, (p, m) in enumerate(zip(prepared, merged, strict=True)):
        alone = rec.candidate_batch(
            [p], MergedBatch.from_lists([m], rec.source_names)
        )  # one basket: the fast paths
        lo, hi = together.query_ptr[q], together.query_ptr[q + 1]
        np.testing.assert_array_equal(rec.features.compute(alone), X_all[lo:hi])
        checked += hi - lo
    assert checked > 100


def test_popularity_block_equals_the_timeline_lookup(small_fit) -> None:  # noqa: ANN001
    rec = small_fit.recommender
    stats = rec.features.stats
    p = rec.prepare(_requests(rec, 1))[0]
    batch = rec.candidate_batch([p], rec.candidates([p]))
    assert int(batch.now[0]) == stats.reference_ts_  # a request without its own time
    later = replace(batch, now=batch.now + 1)  # any other time takes the timeline path
    for days in POPULARITY_WINDOWS:
        fast = FeatureContext(batch, stats).popularity(days)
        now = np.full(len(batch.cand_rows), stats.reference_ts_, np.int64)
        ref = np.log1p(stats.purchases_between(batch.cand_rows, now - days * DAY, now)).astype(
            np.float32
        )
        np.testing.assert_array_equal(fast, ref)
        assert fast.any()  # the sample world has purchases in every window
        slow = FeatureContext(later, stats).popularity(days)
        np.testing.assert_array_equal(
            slow,
            np.log1p(
                stats.purchases_between(batch.cand_rows, now + 1 - days * DAY, now + 1)
            ).astype(np.float32),
        )
