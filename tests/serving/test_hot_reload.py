"""Hot reload: follow the pointer (bundle path or MLflow registry alias), swap atomically,
keep the old model when the new one is broken."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.recommendation import BasketLine, RecommendationRequest
from serving.app import create_app
from serving.schemas import EXAMPLE_TILE

ADMIN = {"Authorization": "Bearer test-admin-key"}


def _point(link: Path, target: Path) -> None:
    """Atomically re-point a symlink (what a deploy script does)."""
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _version(client) -> str:  # noqa: ANN001
    return client.get("/admin/model", headers=ADMIN).json()["version"]


def test_swap_on_reload_and_keep_old_model_when_new_is_broken(
    settings_for,
    bundle_dir,
    bundle_dir_b,
    tmp_path,  # noqa: ANN001
) -> None:
    link = tmp_path / "current"
    _point(link, bundle_dir)
    with TestClient(create_app(settings_for(model_uri=str(link)))) as client:
        v1 = _version(client)
        before = client.app.state.holder.current
        assert client.post("/admin/reload", headers=ADMIN).json()["outcome"] == "unchanged"

        _point(link, bundle_dir_b)
        r = client.post("/admin/reload", headers=ADMIN).json()
        assert r["outcome"] == "swapped"
        v2 = _version(client)
        assert v2 != v1 and r["version"] == v2
        body = client.post("/v1/recommendations", json={"basket": [{"sku": EXAMPLE_TILE}]}).json()
        assert body["model_version"] == v2
        # a request that started on the old model finishes on it
        old = before.recommender.recommend(RecommendationRequest((BasketLine(EXAMPLE_TILE),), k=3))
        assert len(old.items) == 3

        broken = tmp_path / "broken"
        shutil.copytree(bundle_dir, broken)
        manifest = json.loads((broken / "manifest.json").read_text())
        manifest["schema_version"] = 999
        (broken / "manifest.json").write_text(json.dumps(manifest))
        _point(link, broken)
        r = client.post("/admin/reload", headers=ADMIN).json()
        assert r["outcome"] == "failed" and f"still serving {v2}" in r["message"]
        info = client.get("/admin/model", headers=ADMIN).json()
        assert info["version"] == v2 and info["last_error"]
        ok = client.post("/v1/recommendations", json={"basket": [{"sku": EXAMPLE_TILE}]})
        assert ok.status_code == 200 and ok.json()["model_version"] == v2
        assert client.get("/readyz").status_code == 200


def test_poller_follows_the_pointer(settings_for, bundle_dir, bundle_dir_b, tmp_path) -> None:  # noqa: ANN001
    link = tmp_path / "current"
    _point(link, bundle_dir)
    app = create_app(settings_for(model_uri=str(link), reload_poll_seconds=0.2))
    with TestClient(app) as client:
        v1 = _version(client)
        _point(link, bundle_dir_b)
        deadline = time.monotonic() + 30
        while _version(client) == v1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _version(client) != v1


def test_start_without_model_then_pick_it_up(settings_for, bundle_dir, tmp_path) -> None:  # noqa: ANN001
    link = tmp_path / "current"  # nothing there yet
    with TestClient(create_app(settings_for(model_uri=str(link)))) as client:
        assert client.get("/readyz").status_code == 503
        _point(link, bundle_dir)
        started = client.post("/admin/reload?wait=false", headers=ADMIN).json()
        assert started["outcome"] == "started" and started["version"] is None
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").status_code == 200
        assert client.post("/admin/reload", headers=ADMIN).json()["outcome"] == "unchanged"


def _register(bundle: Path, name: str) -> str:
    """Log ``bundle`` as the pyfunc model training logs, register it, return the version."""
    import mlflow

    from training.model_layout import BUNDLE_ARTIFACT, MODEL_NAME_IN_RUN
    from training.pyfunc import ENTRY_FILE

    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(ENTRY_FILE),
            artifacts={BUNDLE_ARTIFACT: str(bundle)},
            pip_requirements=["home-xsell"],
            registered_model_name=name,
        )
    return str(info.registered_model_version)


@pytest.mark.slow
def test_follows_the_mlflow_registry_alias(
    settings_for,
    bundle_dir,
    bundle_dir_b,
    tmp_path,
    monkeypatch,  # noqa: ANN001
) -> None:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    # artifacts under tmp_path, not ./mlruns of whatever folder pytest runs in
    exp = client.create_experiment(
        "serving-test", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=exp)
    v1 = _register(bundle_dir, "home-xsell")
    client.set_registered_model_alias("home-xsell", "champion", v1)

    settings = settings_for(model_uri=None)  # default: models:/home-xsell@champion
    with TestClient(create_app(settings)) as api:
        info = api.get("/admin/model", headers=ADMIN).json()
        assert (
            info["version"] == f"home-xsell/{v1}"
            and info["source_uri"] == "models:/home-xsell@champion"
        )
        assert info["run_id"] and info["resolved_uri"] == f"models:/home-xsell/{v1}"
        v2 = _register(bundle_dir_b, "home-xsell")
        assert api.post("/admin/reload", headers=ADMIN).json()["outcome"] == "unchanged"
        client.set_registered_model_alias("home-xsell", "champion", v2)
        r = api.post("/admin/reload", headers=ADMIN).json()
        assert r["outcome"] == "swapped" and r["version"] == f"home-xsell/{v2}"
        body = api.post("/v1/recommendations", json={"basket": [{"sku": EXAMPLE_TILE}]}).json()
        assert body["model_version"] == f"home-xsell/{v2}" and body["degraded"] is False
