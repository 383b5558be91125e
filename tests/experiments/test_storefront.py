"""The simulated storefront, small: held-out sample-world shoppers against a real API process.
The whole loop (answers with ids, impressions, events with attribution, experiments, report)
must show what offline evaluation predicts: the full pipeline beats co-purchase alone on attach
rate and attributed revenue; an A/A run shows no SRM flag."""

from __future__ import annotations

import pytest

from experiments.simulate_storefront import (
    COPURCHASE,
    FULL,
    ApiProcess,
    prepare,
    run_experiment,
)
from tests.serving.conftest import HERE

pytestmark = pytest.mark.slow


def test_full_pipeline_beats_copurchase_and_aa_is_clean(tmp_path) -> None:  # noqa: ANN001
    bundle, world = prepare(7, 1500, 0.7, HERE / "pipeline_small.yaml", tmp_path)
    shoppers = world.shoppers[:150]
    assert len(shoppers) == 150
    with ApiProcess(bundle, tmp_path) as api:
        ab = run_experiment(api, world, shoppers, "ab-test", [FULL, COPURCHASE], seed=7)
        aa = run_experiment(
            api,
            world,
            shoppers[:80],
            "aa-test",
            [{"name": "a1", "share": 0.5}, {"name": "a2", "share": 0.5}],
            seed=8,
        )
    full, copurchase = ab["variants"]
    assert full["variant"] == "full" and full["units"] > 40 and copurchase["units"] > 40
    for metric in ("attach_rate", "revenue_per_session"):
        d = copurchase["vs_control"][metric]
        assert d["diff"] < 0 and d["significant"], (metric, d)  # co-purchase alone loses
    assert "unknown_id" not in ab["unattributed"]  # every named answer was logged
    assert not ab["srm"]["flagged"] and not aa["srm"]["flagged"]
    assert sum(v["units"] for v in aa["variants"]) > 60
