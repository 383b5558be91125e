"""The Spark engine gives the in-process engine's aggregates exactly, the generators fitted
from them are the same, the data contract's errors hold on Spark, and `recsys train --engine
spark` reports the default's evaluation figures. One local[2] session for all (conftest)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.candidates.co_purchase import CoPurchaseCandidates
from recsys.candidates.ease import EASECandidates
from recsys.candidates.popular import PopularCandidates
from recsys.candidates.training_data import build_training_data
from recsys.cli import main
from recsys.data import DataContractError, load_catalog, load_interactions
from recsys.data.orders import build_orders
from recsys.engine.aggregates import EngineWindow, OrderAggregates
from recsys.engine.inprocess import InProcessEngine
from recsys.engine.spark import SparkEngine

pytestmark = pytest.mark.slow

# The default pipeline's generators that read the aggregates (co-purchase, EASE) plus the
# others, shrunk so that two trainings fit the CI budget.
PIPELINE = """\
version: 1
feature_set: basket_completion
candidates:
  total: 60
  generators:
    - {name: item_knn, quota: 15, params: {weighting: bm25}}
    - {name: co_purchase, quota: 15}
    - {name: ease, quota: 15, params: {l2: 30.0}}
    - {name: cf, quota: 5, params: {model: als, factors: 8, iterations: 3}}
    - {name: style, quota: 5}
    - {name: popular, quota: 5}
ranker:
  enabled: true
  params: {n_estimators: 20, num_leaves: 7, learning_rate: 0.1, min_data_in_leaf: 5, early_stopping_rounds: 5}
style:
  enabled: true
training:
  max_train_orders: 800
  max_validation_orders: 300
  max_eval_orders: 300
"""


def _assert_same(a: OrderAggregates, b: OrderAggregates) -> None:
    assert (a.n_orders, a.n_items) == (b.n_orders, b.n_items)
    np.testing.assert_array_equal(a.category_pairs, b.category_pairs)
    assert type(a.pairs) is type(b.pairs)
    if isinstance(a.pairs, np.ndarray):
        assert a.pairs.dtype == b.pairs.dtype == np.int32
        np.testing.assert_array_equal(a.pairs, b.pairs)
        return
    for part in ("indptr", "indices", "data"):  # the same canonical CSR, not just equal values
        np.testing.assert_array_equal(getattr(a.pairs, part), getattr(b.pairs, part), part)


def test_both_engines_give_identical_aggregates(engine_world: dict[str, Path], spark: Any) -> None:
    catalog = load_catalog(engine_world["catalog"])
    orders = build_orders(load_interactions(engine_world["interactions"], catalog), catalog)
    local = InProcessEngine(orders, catalog.category_codes)
    cut = int(orders.ts[int(len(orders) * 0.6)])
    on_spark = SparkEngine(spark, engine_world["interactions_dir"], catalog)
    try:
        for window in ((None, cut), (cut, None)):  # the generators' window and the rest
            expected = local.order_aggregates(*window)
            assert expected.n_orders > 0 and expected.category_pairs.sum() > 0
            _assert_same(expected, on_spark.order_aggregates(*window))
            pop = local.item_popularity((7, 30, 365), 30.0, *window)
            got = on_spark.item_popularity((7, 30, 365), 30.0, *window)
            assert (got.t_end, got.windows) == (pop.t_end, pop.windows)
            assert pop.counts[0].sum() > 0 and pop.counts[0].sum() < pop.counts[2].sum()
            np.testing.assert_array_equal(got.counts, pop.counts)  # counts: exact
            np.testing.assert_allclose(got.decayed, pop.decayed, rtol=1e-6)
    finally:
        on_spark.close()


def test_large_catalog_form_is_identical_and_pruned_on_the_cluster(
    engine_world: dict[str, Path], spark: Any
) -> None:
    # a "large" catalog for this world (dense_max_items below its 300 items): sparse CSR rows
    # streamed from the cluster, pairs bought together only once dropped there
    catalog = load_catalog(engine_world["catalog"])
    orders = build_orders(load_interactions(engine_world["interactions"], catalog), catalog)
    on_spark = SparkEngine(
        spark, engine_world["interactions_dir"], catalog, dense_max_items=100, min_pair_count=2
    )
    try:
        got = on_spark.order_aggregates()
    finally:
        on_spark.close()
    local = InProcessEngine(orders, catalog.category_codes, dense_max_items=100, min_pair_count=2)
    expected = local.order_aggregates()
    exact = InProcessEngine(orders, catalog.category_codes).order_aggregates()
    assert isinstance(got.pairs, sp.csr_matrix)
    assert 0 < expected.n_pairs < exact.n_pairs  # pruning removed pairs seen once
    _assert_same(expected, got)
    np.testing.assert_array_equal(got.item_orders, exact.item_orders)


def test_generators_fitted_from_spark_aggregates_are_the_same(
    engine_world: dict[str, Path], spark: Any
) -> None:
    catalog = load_catalog(engine_world["catalog"])
    data, _ = build_training_data(catalog, load_interactions(engine_world["interactions"], catalog))
    on_spark = SparkEngine(spark, engine_world["interactions"], catalog)  # the single file
    remote = data.__class__(**{**data.__dict__, "aggregates": on_spark.order_aggregates()})
    a, b = CoPurchaseCandidates().fit(data), CoPurchaseCandidates().fit(remote)
    p1 = PopularCandidates(window_days=(7, 30, 365)).fit(data)
    p2 = PopularCandidates(window_days=(7, 30, 365)).fit(
        data.__class__(**{**data.__dict__, "engine_window": EngineWindow(on_spark)})
    )
    assert p1.t_end_ == p2.t_end_
    np.testing.assert_array_equal(p1.counts_, p2.counts_)
    np.testing.assert_allclose(p1.decayed_, p2.decayed_, rtol=1e-6)
    np.testing.assert_array_equal(p1.ranking_, p2.ranking_)
    assert (a.pair_counts_ != b.pair_counts_).nnz == 0
    np.testing.assert_allclose(a.scores_.toarray(), b.scores_.toarray(), rtol=1e-6)
    np.testing.assert_allclose(a.category_complements_, b.category_complements_, rtol=1e-6)
    e1, e2 = EASECandidates(l2=30.0).fit(data), EASECandidates(l2=30.0).fit(remote)
    np.testing.assert_array_equal(e1.items_, e2.items_)
    np.testing.assert_allclose(e1.weights_, e2.weights_, rtol=1e-5, atol=1e-7)
    on_spark.close()


GOOD = pd.DataFrame(
    {
        "order_id": ["O1", "O1", "O2"],
        "user_id": ["U1", "U1", None],
        "sku": ["SKU-000001", "SKU-000002", "SKU-000003"],
        "quantity": [1, 2, 1],
        "ts": pd.to_datetime(["2025-01-01T10:00Z", "2025-01-01T10:01Z", "2025-01-02T09:00Z"]),
        "event": ["purchase", "purchase", "purchase"],
    }
)

BAD = {
    "missing column": (GOOD.drop(columns=["quantity"]), None, r"missing column\(s\) 'quantity'"),
    "zero quantity": (GOOD.assign(quantity=[1, 0, 1]), "quantity", "whole number > 0"),
    "unknown event": (GOOD.assign(event=["purchase", "click", "view"]), "event", "'click'"),
    "empty sku": (GOOD.assign(sku=["SKU-000001", " ", "SKU-000003"]), "sku", "empty sku"),
    "sku not in catalog": (GOOD.assign(sku=["SKU-000001", "NOPE", "SKU-000003"]), "sku", "'NOPE'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_contract_errors_hold_on_both_engines(
    case: str, engine_world: dict[str, Path], spark: Any, tmp_path: Path
) -> None:
    frame, column, message = BAD[case]
    catalog = load_catalog(engine_world["catalog"])
    path = tmp_path / "events.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataContractError, match=message) as local:
        load_interactions(path, catalog)
    with pytest.raises(DataContractError, match=message) as remote:
        SparkEngine(spark, path, catalog)
    assert local.value.column == remote.value.column == column


def test_corrupt_parquet_is_a_contract_error_on_both_engines(
    engine_world: dict[str, Path], spark: Any, tmp_path: Path
) -> None:
    catalog = load_catalog(engine_world["catalog"])
    single = tmp_path / "events.parquet"
    single.write_bytes(b"PAR1 this is not parquet")
    folder = tmp_path / "events"
    for day in ("2025-01-01", "2025-01-02"):
        (folder / f"date={day}").mkdir(parents=True)
        GOOD.to_parquet(folder / f"date={day}" / "part-0.parquet", index=False)
    # a later day's file is damaged: the schema comes from the good one, the read fails later
    (folder / "date=2025-01-02" / "part-0.parquet").write_bytes(b"PAR1 truncated")
    for path in (single, folder):
        with pytest.raises(DataContractError, match="cannot be read"):
            load_interactions(path, catalog)
        with pytest.raises(DataContractError, match="cannot be read") as remote:
            SparkEngine(spark, path, catalog)
        assert str(path) in str(remote.value)


def test_good_events_pass_the_spark_checks(
    engine_world: dict[str, Path], spark: Any, tmp_path: Path
) -> None:
    catalog = load_catalog(engine_world["catalog"])
    GOOD.to_parquet(tmp_path / "ok.parquet", index=False)
    agg = SparkEngine(spark, tmp_path / "ok.parquet", catalog).order_aggregates()
    assert agg.n_orders == 2 and int(agg.pairs.sum()) == 4 + 1  # {1,2}: 4 cells; {3}: 1


def _metrics(name: str) -> tuple[dict[str, float], dict[str, str]]:
    from training.tracking import client_for, configure_mlflow

    client = client_for(configure_mlflow())
    run = client.get_run(client.get_model_version(name, "1").run_id)
    metrics = {
        k: v
        for k, v in run.data.metrics.items()
        if not k.startswith("time.") and k != "peak_memory_mb"
    }
    return metrics, run.data.tags


def test_train_with_spark_reports_the_default_figures(
    engine_world: dict[str, Path], spark: Any, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    config = tmp_path / "pipeline.yaml"
    config.write_text(PIPELINE)
    results = {}
    for engine in ("inprocess", "spark"):
        name = f"engine-{engine}-{uuid.uuid4().hex[:6]}"
        args = ["train", "--catalog", str(engine_world["catalog"]), "--interactions"]
        args += [str(engine_world["interactions"]), "--seed", "11", "--name", name]
        args += ["--config", str(config)]
        args += ["--experiment", "engine-test", "--no-progress", "--engine", engine]
        args += ["--spark-master", "local[2]"]
        assert main(args) == 0, capsys.readouterr().err
        capsys.readouterr()
        results[engine] = _metrics(name)
    (plain, plain_tags), (sparked, spark_tags) = results["inprocess"], results["spark"]
    assert plain_tags["training.engine"] == "inprocess" and spark_tags["training.engine"] == "spark"
    assert {"recall_at_10", "ndcg_at_10"} <= plain.keys()
    assert plain.keys() == sparked.keys()
    for key, value in plain.items():
        assert sparked[key] == pytest.approx(value, abs=1e-9), key
    # the test session's Spark session was reused by the command, not stopped under it
    assert spark.sparkContext._jsc is not None
