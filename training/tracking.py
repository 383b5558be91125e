"""Where MLflow keeps runs, models and artifacts.

Embedded by default: with no ``MLFLOW_TRACKING_URI`` the tracking store and the registry are
one SQLite file ``<data_dir>/mlflow.db`` and artifacts go to ``<data_dir>/mlartifacts``. The
standard variables ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI`` win when set (e.g. an
``mlflow server`` with PostgreSQL behind it). Nothing happens at import time: callers invoke
``configure_mlflow`` when they are about to talk to MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recsys.settings import Settings

ARTIFACTS_DIR = "mlartifacts"


@dataclass(frozen=True)
class TrackingTarget:
    """Resolved MLflow locations. ``artifact_location`` is None when a server decides it."""

    tracking_uri: str
    registry_uri: str
    artifact_location: str | None


def _local_sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI, None for anything else."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def resolve_tracking(settings: Settings | None = None) -> TrackingTarget:
    """Tracking/registry URIs and, for local stores, the artifact folder next to the database."""
    settings = settings or Settings()
    tracking, registry = settings.mlflow_uris()
    artifacts: str | None = None
    db = _local_sqlite_path(tracking)
    if db is not None:
        artifacts = (db.parent / ARTIFACTS_DIR).resolve().as_uri()
    return TrackingTarget(tracking, registry, artifacts)


def configure_mlflow(settings: Settings | None = None) -> TrackingTarget:
    """Point the ``mlflow`` module at the resolved stores (creating a local folder if needed)."""
    import mlflow

    target = resolve_tracking(settings)
    db = _local_sqlite_path(target.tracking_uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(target.tracking_uri)
    mlflow.set_registry_uri(target.registry_uri)
    return target


def ensure_experiment(name: str, target: TrackingTarget) -> str:
    """Id of the experiment ``name``, created with the resolved artifact location if new."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.registry_uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        return str(existing.experiment_id)
    location = None
    if target.artifact_location is not None:
        location = f"{target.artifact_location.rstrip('/')}/{_slug(name)}"
    return str(client.create_experiment(name, artifact_location=location))


def _slug(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "-" for c in name.strip())
    return keep or "experiment"


def client_for(target: TrackingTarget):  # -> mlflow.MlflowClient (lazy import keeps startup fast)
    """An ``MlflowClient`` bound to ``target`` (explicit, so tests can run several stores)."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=target.tracking_uri, registry_uri=target.registry_uri)
