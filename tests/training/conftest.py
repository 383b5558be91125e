"""Fixtures for the lifecycle tests: one embedded MLflow store (SQLite + local artifacts)
per test session, pointed at through the standard environment variables per test."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mlflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose ``mlflow.db`` is shared by the session (creating it costs ~2 s)."""
    return tmp_path_factory.mktemp("mlflow-store")


@pytest.fixture()
def mlflow_env(mlflow_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Embedded default store under ``mlflow_dir`` (no MLFLOW_* variables set) and a fresh
    registered model name per test, so tests never see each other's champions."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(mlflow_dir))
    monkeypatch.setenv("RECSYS_MODEL_NAME", f"test-model-{uuid.uuid4().hex[:8]}")
    return mlflow_dir
