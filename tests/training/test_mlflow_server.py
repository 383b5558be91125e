"""A real `mlflow server` backed by the PostgreSQL on this machine (fresh database per run,
dropped afterwards), artifacts proxied to a temporary folder: train, register and promote
through it, then load the champion back through the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from recsys.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def fresh_database(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for this test (SQLAlchemy URL), dropped afterwards."""
    import psycopg

    parsed = urlparse(postgres_url.replace("+psycopg", ""))
    admin = parsed._replace(path="/postgres").geturl()
    name = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield parsed._replace(scheme="postgresql+psycopg", path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def mlflow_server(fresh_database: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on a free 127.0.0.1 port; yields its URL, stops the process group."""
    port = _free_port()
    artifacts = tmp_path / "server-artifacts"
    artifacts.mkdir()
    log_file = open(tmp_path / "mlflow-server.log", "w")  # noqa: SIM115 - closed below
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            fresh_database,
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                log_file.flush()
                pytest.fail(
                    f"mlflow server exited: {(tmp_path / 'mlflow-server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mlflow server did not become healthy within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log_file.close()


def test_train_register_promote_through_a_server(
    mlflow_server: str, tiny_world_files, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import mlflow
    import pandas as pd

    from training.tracking import client_for, configure_mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))  # must stay unused
    monkeypatch.setenv("RECSYS_MODEL_NAME", "home-xsell")
    args = [
        "train",
        "--catalog",
        str(tiny_world_files["catalog"]),
        "--interactions",
        str(tiny_world_files["interactions"]),
        "--config",
        str(tiny_world_files["config"]),
        "--seed",
        "3",
        "--no-progress",
    ]
    assert main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "models:/home-xsell/1"
    assert main([*args, "--promote"]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "models:/home-xsell/2"
    assert "gate: passed" in out

    client = client_for(configure_mlflow())
    assert str(client.get_model_version_by_alias("home-xsell", "champion").version) == "2"
    assert not (tmp_path / "data" / "mlflow.db").exists()  # nothing went to the local store

    # the registry is in PostgreSQL, the artifacts behind the server: load the champion back
    model = mlflow.pyfunc.load_model("models:/home-xsell@champion")
    skus = pd.read_parquet(tiny_world_files["catalog"])["sku"].tolist()[:2]
    pred = model.predict(pd.DataFrame({"basket_id": ["s"], "skus": [skus]}))
    assert len(pred.loc[0, "items"]) == 10 and isinstance(pred.loc[0, "items"][0], dict)

    assert main(["promote", "--version", "1"]) == 0  # equal metrics, same window: passes
    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "2 version(s)" in listing
