"""Fixtures for the lifecycle tests: one embedded MLflow store (SQLite + local artifacts)
per test session, pointed at through the standard environment variables per test."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_MLFLOW_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _isolate_mlflow_globals() -> Iterator[None]:
    """``mlflow.set_tracking_uri`` keeps a module global AND writes MLFLOW_TRACKING_URI into
    ``os.environ``; undo both after each test so no later test (here or in another package)
    talks to a store a test created."""
    saved = {name: os.environ.get(name) for name in _MLFLOW_VARS}
    yield
    if "mlflow" in sys.modules:
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


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


# A pipeline shrunk for tests: same stages as the default, small models, few iterations.
TINY_PIPELINE = """\
version: 1
feature_set: basket_completion
candidates:
  total: 60
  generators:
    - name: item_knn
      quota: 25
      params: {weighting: bm25}
    - name: co_purchase
      quota: 20
    - name: cf
      quota: 10
      params: {model: als, factors: 8, iterations: 3}
    - name: style
      quota: 10
    - name: popular
      quota: 10
ranker:
  enabled: true
  params: {n_estimators: 20, num_leaves: 7, learning_rate: 0.1, min_data_in_leaf: 5, early_stopping_rounds: 5}
diversity:
  max_per_category: 3
style:
  enabled: true
training:
  max_train_orders: 800
  max_validation_orders: 300
  max_eval_orders: 300
"""

# A genuinely weaker pipeline: popular items as the only candidates (the gate must refuse it).
WEAK_PIPELINE = """\
version: 1
feature_set: basket_completion
candidates:
  total: 20
  generators:
    - name: popular
      quota: 20
ranker:
  enabled: true
  params: {n_estimators: 10, num_leaves: 7, min_data_in_leaf: 5}
style:
  enabled: true
training:
  max_train_orders: 800
  max_validation_orders: 300
  max_eval_orders: 300
"""


@pytest.fixture(scope="session")
def tiny_world_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small sample world on disk (300 SKUs, ~1,500 project orders) plus the pipeline
    configs: keys catalog, interactions, ground_truth, config, weak_config."""
    from recsys.sample_world import generate_world

    out = tmp_path_factory.mktemp("tiny-world")
    world = generate_world(seed=3, n_orders=1500, n_skus=300)
    paths = dict(world.save(out))
    paths["config"] = out / "tiny_pipeline.yaml"
    paths["config"].write_text(TINY_PIPELINE)
    paths["weak_config"] = out / "weak_pipeline.yaml"
    paths["weak_config"].write_text(WEAK_PIPELINE)
    return paths
