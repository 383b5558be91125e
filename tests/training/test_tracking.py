from __future__ import annotations

from pathlib import Path

import pytest

from recsys.settings import Settings
from training.tracking import ensure_experiment, resolve_tracking


def test_embedded_default_is_sqlite_and_local_artifacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    target = resolve_tracking(Settings(data_dir=tmp_path))
    assert target.tracking_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert target.registry_uri == target.tracking_uri
    assert target.artifact_location == (tmp_path.resolve() / "mlartifacts").as_uri()


def test_standard_env_vars_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "http://127.0.0.1:6000")
    target = resolve_tracking(Settings(data_dir=tmp_path))
    assert target.tracking_uri == "http://127.0.0.1:5999"
    assert target.registry_uri == "http://127.0.0.1:6000"
    assert target.artifact_location is None  # the server decides


def test_env_sqlite_keeps_artifacts_next_to_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "elsewhere" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    target = resolve_tracking(Settings(data_dir=tmp_path / "data"))
    assert target.artifact_location == (db.parent / "mlartifacts").as_uri()


def test_experiment_created_with_artifacts_under_data_dir(mlflow_env: Path) -> None:
    from training.tracking import client_for, configure_mlflow

    target = configure_mlflow(Settings())
    exp_id = ensure_experiment("tracking-test", target)
    assert ensure_experiment("tracking-test", target) == exp_id  # idempotent
    exp = client_for(target).get_experiment(exp_id)
    assert exp.artifact_location.startswith((mlflow_env.resolve() / "mlartifacts").as_uri())
    assert (mlflow_env / "mlflow.db").is_file()
