"""Serving test fixtures: settings in a temporary folder and real uvicorn processes. The small
real model bundles (``bundle_dir``, ``bundle_dir_b``) are the root conftest's, shared with the
reliability tests so each is fitted once per session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from recsys.settings import Settings

HERE = Path(__file__).parent
ADMIN_KEY = "test-admin-key"
MERCH_KEY = "test-merch-key"


def make_settings(tmp: Path, **overrides) -> Settings:  # noqa: ANN003
    values = dict(
        data_dir=tmp,
        reload_poll_seconds=0,
        admin_key=ADMIN_KEY,
        merchandiser_key=MERCH_KEY,
        model_uri=str(tmp / "no-model-here"),
        # a shared CI machine can be slow: tests that want the degraded path set a tiny budget
        latency_budget_ms=2000.0,
    )
    values.update(overrides)
    return Settings(**values)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real uvicorn process serving ``serving.app:app_from_env`` on 127.0.0.1."""

    def __init__(self, env: dict[str, str], workers: int = 1, log: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> Server:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "serving.app:app_from_env",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode} (log: {self.log})")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"uvicorn did not start in {timeout}s (log: {self.log})")

    def kill9(self) -> None:
        """SIGKILL the whole process group (master and workers): no shutdown code runs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def make(env: dict[str, str], workers: int = 1) -> Server:
        base_env = {
            "RECSYS_DATA_DIR": str(tmp_path),
            "RECSYS_ADMIN_KEY": ADMIN_KEY,
            "RECSYS_RELOAD_POLL_SECONDS": "0",
        }
        server = Server({**base_env, **env}, workers, tmp_path / f"uvicorn-{len(servers)}.log")
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def settings_for(tmp_path: Path):  # noqa: ANN201
    """``settings_for(**overrides)``: settings in this test's temporary folder."""

    def make(**overrides) -> Settings:  # noqa: ANN003
        return make_settings(tmp_path, **overrides)

    return make
