"""`recsys train` and `recsys validate-config` reject bad configs and bad data up front,
with messages that name the problem, before any MLflow run is created."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.cli import main


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_and_test_configs_validate(tiny_world_files, capsys) -> None:
    assert main(["validate-config", str(tiny_world_files["config"])]) == 0
    assert "ok:" in capsys.readouterr().out
    from recsys.config import DEFAULT_CONFIG_PATH

    assert main(["validate-config", str(DEFAULT_CONFIG_PATH)]) == 0


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "version: 1\ncandidates:\n  generators:\n    - name: magic_box\n      quota: 10\n",
            "magic_box",
        ),
        (
            "version: 1\nranker:\n  exclude_features: [no_such_feature]\n",
            "no_such_feature",
        ),
        ("version: 1\nstyle:\n  styles: [baroque-space-age]\n", "baroque-space-age"),
        ("version: 1\nranker:\n  n_leaves: 31\n", "n_leaves"),
    ],
)
def test_bad_config_is_rejected_by_name(
    tmp_path: Path, capsys, yaml_text: str, expected: str
) -> None:
    bad = _write(tmp_path, "bad.yaml", yaml_text)
    assert main(["validate-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "invalid pipeline config" in err and expected in err


def test_train_with_bad_config_fails_before_any_work(
    tiny_world_files, mlflow_env: Path, tmp_path: Path, capsys
) -> None:
    bad = _write(
        tmp_path,
        "bad.yaml",
        "version: 1\ncandidates:\n  generators:\n    - name: magic_box\n      quota: 10\n",
    )
    db = mlflow_env / "mlflow.db"
    existed = db.exists()
    code = main(
        [
            "train",
            "--catalog",
            str(tiny_world_files["catalog"]),
            "--interactions",
            str(tiny_world_files["interactions"]),
            "--config",
            str(bad),
        ]
    )
    assert code == 2
    assert "magic_box" in capsys.readouterr().err
    assert db.exists() == existed  # no MLflow store touched


def test_catalog_missing_column_names_file_and_column(
    tiny_world_files, tmp_path: Path, capsys
) -> None:
    cat = pd.read_parquet(tiny_world_files["catalog"]).drop(columns=["price"])
    path = tmp_path / "catalog.parquet"
    cat.to_parquet(path)
    code = main(
        [
            "train",
            "--catalog",
            str(path),
            "--interactions",
            str(tiny_world_files["interactions"]),
            "--config",
            str(tiny_world_files["config"]),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'price'" in err


def test_interactions_with_unknown_sku_name_the_row(
    tiny_world_files, tmp_path: Path, capsys
) -> None:
    ev = pd.read_parquet(tiny_world_files["interactions"]).head(200).copy()
    ev.loc[5, "sku"] = "NOT-A-SKU"
    path = tmp_path / "interactions.csv"
    ev.to_csv(path, index=False)
    code = main(
        [
            "train",
            "--catalog",
            str(tiny_world_files["catalog"]),
            "--interactions",
            str(path),
            "--config",
            str(tiny_world_files["config"]),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "NOT-A-SKU" in err and "is not in the catalog" in err and "row" in err


def test_too_little_data_is_explained(tiny_world_files, tmp_path: Path, capsys) -> None:
    ev = pd.read_parquet(tiny_world_files["interactions"])
    few = ev[ev["order_id"].isin(ev.loc[ev["event"] == "purchase", "order_id"].unique()[:5])]
    path = tmp_path / "few.parquet"
    few.to_parquet(path)
    code = main(
        [
            "train",
            "--catalog",
            str(tiny_world_files["catalog"]),
            "--interactions",
            str(path),
            "--config",
            str(tiny_world_files["config"]),
        ]
    )
    assert code == 2
    assert "purchase orders; training needs at least" in capsys.readouterr().err


def test_unknown_skus_can_be_dropped_and_counted(tiny_world_files, tmp_path: Path) -> None:
    from training.train import load_inputs

    ev = pd.read_parquet(tiny_world_files["interactions"])
    ev.loc[[3, 10, 11], "sku"] = "NOT-A-SKU"
    path = tmp_path / "interactions.parquet"
    ev.to_parquet(path)
    inputs = load_inputs(
        tiny_world_files["catalog"], path, tiny_world_files["config"], unknown_skus="drop"
    )
    assert inputs.dropped_unknown_sku_events == 3
    assert len(inputs.interactions) == len(ev) - 3
    assert inputs.ground_truth is None  # no ground_truth.parquet next to this file
