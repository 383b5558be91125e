"""Issue 13 item 5: database faults while serving. A deleted SQLite file used to swallow
acknowledged events (written into the unlinked inode); read-only files killed workers or left
them failing after the fault cleared; ``/readyz`` said 200 throughout. Now: 503 + Retry-After
(nothing acknowledged that is not durable), readiness 503 (without paths for anonymous
callers), and recovery as soon as the fault is fixed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from feature_store.event_log import EventLog, StoreUnavailable
from serving.schemas import EXAMPLE_TILE

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": "Bearer test-admin-key"}


def _post(base: str, eid: str) -> httpx.Response:
    ev = {"event_id": eid, "type": "view", "sku": EXAMPLE_TILE, "ts": "2026-03-01T12:00:00Z"}
    return httpx.post(f"{base}/v1/events", json={"events": [ev]}, timeout=30)  # shared CI cores


def _workers(server) -> set[str]:  # noqa: ANN001
    out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True)
    return set(out.stdout.split())


def _freeze(paths: list[Path]) -> None:
    """Make files and their folder unwritable, for root too (chattr +i) or by mode bits."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: cannot make a file read-only for root")
        r = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"chattr +i not supported here: {r.stderr.strip()}")
    else:
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)


def _thaw(paths: list[Path]) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
    else:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_deleted_database_file_is_detected_not_written_into(
    server_factory, bundle_dir, tmp_path
) -> None:  # noqa: ANN001
    db = tmp_path / "db" / "events.db"
    server = server_factory(
        {"RECSYS_DATABASE_URL": f"sqlite:///{db}", "RECSYS_MODEL_URI": str(bundle_dir)}
    ).start()
    assert _post(server.base, "before").status_code == 200
    assert httpx.get(f"{server.base}/readyz").status_code == 200
    for f in db.parent.iterdir():
        f.unlink()
    r = _post(server.base, "after-delete")
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert str(tmp_path) not in r.text
    ready = httpx.get(f"{server.base}/readyz")
    assert ready.status_code == 503 and ready.json()["store_reachable"] is False
    assert str(tmp_path) not in ready.text and "Error" not in ready.text  # nothing leaked
    detailed = httpx.get(f"{server.base}/readyz", headers=ADMIN).json()
    assert any("deleted" in d and str(db) in d for d in detailed["details"])
    assert server.proc.poll() is None

    server.stop()  # a restart starts a new, empty store and everything acknowledged is in it
    restarted = server_factory(
        {"RECSYS_DATABASE_URL": f"sqlite:///{db}", "RECSYS_MODEL_URI": str(bundle_dir)}
    ).start()
    assert _post(restarted.base, "after-restart").status_code == 200
    restarted.stop()
    assert set(EventLog(f"sqlite:///{db}").read_frame()["event_id"]) == {"after-restart"}


def test_database_restored_at_the_path_is_reopened(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = EventLog(f"sqlite:///{db}")
    from datetime import UTC, datetime

    from feature_store.event_log import Event

    log.append([Event("a", "view", EXAMPLE_TILE, datetime.now(UTC))])
    backup = tmp_path / "backup.db"
    with log.engine.connect() as conn:  # a consistent copy, as an operator's backup would be
        conn.exec_driver_sql(f"VACUUM INTO '{backup}'")
    for f in tmp_path.glob("events.db*"):
        f.unlink()
    with pytest.raises(StoreUnavailable, match="deleted"):
        log.append([Event("b", "view", EXAMPLE_TILE, datetime.now(UTC))])
    shutil.copy(backup, db)
    log.append([Event("c", "view", EXAMPLE_TILE, datetime.now(UTC))])
    assert set(log.read_frame()["event_id"]) == {"a", "c"}
    log.dispose()


def test_read_only_database_refuses_then_recovers_without_worker_deaths(
    server_factory,
    bundle_dir,
    tmp_path,  # noqa: ANN001
) -> None:
    folder = tmp_path / "db"
    db = folder / "events.db"
    server = server_factory(
        {"RECSYS_DATABASE_URL": f"sqlite:///{db}", "RECSYS_MODEL_URI": str(bundle_dir)}, workers=2
    ).start()
    acked = [f"ok-{i}" for i in range(10) if _post(server.base, f"ok-{i}").status_code == 200]
    assert len(acked) == 10
    time.sleep(3)  # both workers up (the fixture waits for the first one only)
    before = _workers(server)
    frozen = [*folder.iterdir(), folder]
    _freeze(frozen)
    try:
        for i in range(20):  # lands on both workers
            r = _post(server.base, f"ro-{i}")
            assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert httpx.get(f"{server.base}/readyz").status_code == 503
    finally:
        _thaw(frozen)
    for i in range(20):  # both workers write again at once: no connection stuck read-only
        r = _post(server.base, f"back-{i}")
        assert r.status_code == 200, r.text
        acked.append(f"back-{i}")
    deadline = time.monotonic() + 15  # the rules poller retries its store every 2 s
    while httpx.get(f"{server.base}/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert httpx.get(f"{server.base}/readyz").status_code == 200
    assert _workers(server) == before and len(before) >= 2, "a worker died or was replaced"
    server.stop()
    stored = set(EventLog(f"sqlite:///{db}").read_frame()["event_id"])
    assert set(acked) <= stored and not any(e.startswith("ro-") for e in stored)
