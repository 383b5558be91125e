"""Against real uvicorn processes: durability across kill -9, hot swap under load with zero
failed requests, PostgreSQL + Redis shared by two workers, and ``recsys serve``'s example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from feature_store.event_log import EventLog
from feature_store.online_state import RedisOnlineState
from serving.schemas import EXAMPLE_TILE, EXAMPLE_WALLPAPER

pytestmark = pytest.mark.slow
ADMIN = {"Authorization": "Bearer test-admin-key"}


def _batch(prefix: str, n: int, **extra) -> dict:  # noqa: ANN003
    ts = "2026-03-01T12:00:00+00:00"  # fixed: a retried batch is the same batch
    return {
        "events": [
            {"event_id": f"{prefix}-{i}", "type": "view", "sku": EXAMPLE_TILE, "ts": ts, **extra}
            for i in range(n)
        ]
    }


def test_acknowledged_events_survive_kill_9(server_factory, bundle_dir, tmp_path) -> None:  # noqa: ANN001
    db = tmp_path / "events.db"
    env = {"RECSYS_DATABASE_URL": f"sqlite:///{db}", "RECSYS_MODEL_URI": str(bundle_dir)}
    server = server_factory(env).start()
    acked: list[str] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.base, timeout=5) as c:
            i = 0
            while not stop.is_set():
                body = _batch(f"b{i}", 20)
                try:
                    r = c.post("/v1/events", json=body)
                except httpx.HTTPError:
                    return  # the server died mid-request: that batch was not acknowledged
                if r.status_code == 200:
                    acked.extend(e["event_id"] for e in body["events"])
                i += 1

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(2.0)
    server.kill9()  # while batches are in flight
    stop.set()
    sender.join(10)
    assert len(acked) >= 100, "the sender should have been acknowledged many batches"

    stored = set(EventLog(f"sqlite:///{db}").read_frame()["event_id"])
    assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged events lost"

    restarted = server_factory(env).start()
    r = httpx.post(f"{restarted.base}/v1/events", json=_batch("b0", 20), timeout=5)
    assert r.json() == {
        "accepted": 0,
        "duplicates": 20,
        "unknown_skus": [],
        "rejected": [],
        "conflicting_duplicates": [],
    }


def _point(link: Path, target: Path) -> None:
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def test_hot_swap_under_load_has_zero_failed_requests(
    server_factory,
    bundle_dir,
    bundle_dir_b,
    tmp_path,  # noqa: ANN001
) -> None:
    link = tmp_path / "current"
    _point(link, bundle_dir)
    prom = tmp_path / "prometheus"
    prom.mkdir()
    env = {
        "RECSYS_MODEL_URI": str(link),
        "RECSYS_RELOAD_POLL_SECONDS": "0.3",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),  # what `recsys serve --workers 2` sets
    }
    server = server_factory(env, workers=2).start()
    statuses: Counter = Counter()
    versions: Counter = Counter()
    recent: list[str] = []  # model version of each answer, in order
    errors: list[str] = []
    stop = threading.Event()
    body = {"basket": [{"sku": EXAMPLE_TILE}, {"sku": EXAMPLE_WALLPAPER}], "page": "cart", "k": 5}

    def load() -> None:
        with httpx.Client(base_url=server.base, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.post("/v1/recommendations", json=body)
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        versions[r.json()["model_version"]] += 1
                        recent.append(r.json()["model_version"])
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))
                time.sleep(0.005)

    def served_only(version: str, timeout: float = 60.0) -> bool:
        """Wait until the last 20 answers all come from ``version`` (both workers swapped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(recent) >= 20 and set(recent[-20:]) == {version}:
                return True
            time.sleep(0.1)
        return False

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        first = recent[-1]
        for target in (bundle_dir_b, bundle_dir, bundle_dir_b):  # three promotions
            before = recent[-1]
            _point(link, target)
            deadline = time.monotonic() + 60
            while recent[-1] == before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert served_only(recent[-1]), "the swap did not reach both workers"
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert not errors and set(statuses) == {200}, (statuses, errors[:3])
    assert sum(statuses.values()) > 100
    assert len(versions) == 2 and recent[-1] != first, versions  # both models answered
    metrics = httpx.get(f"{server.base}/metrics").text
    # aggregated over both workers: every answered request is counted exactly once
    counted = re.search(
        r'recsys_http_requests_total\{endpoint="/v1/recommendations",method="POST",status="200"\} (\S+)',
        metrics,
    )
    assert counted and float(counted.group(1)) == statuses[200]
    assert 'recsys_model_reloads_total{outcome="swapped"}' in metrics


@pytest.mark.postgres
@pytest.mark.redis
def test_two_workers_share_postgres_events_and_redis_state(
    server_factory,
    bundle_dir,
    postgres_url,
    redis_url,  # noqa: ANN001
) -> None:
    env = {
        "RECSYS_MODEL_URI": str(bundle_dir),
        "RECSYS_DATABASE_URL": postgres_url,
        "RECSYS_REDIS_URL": redis_url,
    }
    server = server_factory(env, workers=2).start()
    run = uuid.uuid4().hex[:10]
    user = f"user-{run}"
    with httpx.Client(base_url=server.base, timeout=10) as c:
        assert c.get("/readyz").json()["online_state_reachable"] is True
        acks = [
            c.post(
                "/v1/events",
                json={
                    "events": [
                        {
                            "event_id": f"{run}-{i}",
                            "type": "add_to_cart",
                            "user_id": user,
                            "sku": EXAMPLE_TILE if i % 2 else EXAMPLE_WALLPAPER,
                            "ts": datetime(2026, 3, 1, 12, 0, i, tzinfo=UTC).isoformat(),
                        }
                    ]
                },
            ).json()
            for i in range(20)
        ]
        assert sum(a["accepted"] for a in acks) == 20
        # the same batch again through either worker: all duplicates
        dup = c.post(
            "/v1/events",
            json={
                "events": [
                    {
                        "event_id": f"{run}-3",
                        "type": "add_to_cart",
                        "user_id": user,
                        "sku": EXAMPLE_TILE,
                        "ts": "2026-03-01T12:00:03Z",
                    }
                ]
            },
        ).json()
        assert dup["duplicates"] == 1
        for _ in range(6):  # lands on both workers
            r = c.post("/v1/recommendations", json={"basket": [], "user_id": user, "k": 5})
            assert r.status_code == 200 and len(r.json()["items"]) == 5
    log = EventLog(postgres_url)
    try:
        frame = log.read_frame()
        assert (frame["event_id"].str.startswith(run)).sum() == 20
    finally:
        log.dispose()
    state = RedisOnlineState(redis_url)
    try:
        ctx = state.user_context(user, None)
        assert ctx is not None and set(ctx.recent_skus) == {EXAMPLE_TILE, EXAMPLE_WALLPAPER}
        assert ctx.recent_skus[0] == EXAMPLE_TILE  # event 19 (odd) was the last
        assert ctx.style_affinity is None or abs(sum(ctx.style_affinity.values()) - 1) < 1e-6
    finally:
        state.client.delete(f"recsys:recent:u:{user}", f"recsys:style:u:{user}")
        state.close()


def _worker_processes(pid: int) -> list[int]:
    """uvicorn's worker processes under ``pid`` (spawned by multiprocessing), or ``pid`` itself
    when it serves alone."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children += [int(c) for c in (task / "children").read_text().split()]
    workers = [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
    return workers or [pid]


def test_recsys_serve_prints_a_working_curl(bundle_dir, tmp_path) -> None:  # noqa: ANN001
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # a generous budget: one worker per core start cold at once, and a busy CI machine must not
    # turn the example's answer into a degraded one
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_RELOAD_POLL_SECONDS": "0",
        "RECSYS_LATENCY_BUDGET_MS": "2000",
    }
    recsys = Path(sys.executable).with_name("recsys")
    proc = subprocess.Popen(
        [str(recsys), "serve", "--port", str(port), "--model-uri", str(bundle_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        commands: list[str] = []
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline and len(commands) < 2:
            line = proc.stdout.readline()
            if not line:
                break
            if line.strip().startswith("curl "):
                commands.append(line.strip())
        assert len(commands) == 2, (
            f"recsys serve printed {len(commands)} curl examples, expected cart + checkout"
        )
        # without --workers / RECSYS_WORKERS: one uvicorn worker per core this process may use
        assert len(_worker_processes(proc.pid)) == len(os.sched_getaffinity(0))
        cart, checkout = commands
        assert re.search(rf"127\.0\.0\.1:{port}/v1/recommendations", cart)
        assert "Grey porcelain" not in cart  # SKUs, not titles
        import json

        out = subprocess.run(cart, shell=True, capture_output=True, text=True, timeout=30)
        body = json.loads(out.stdout)
        assert len(body["items"]) == 5 and body["degraded"] is False
        assert body["unknown_skus"] == []
        assert '"page": "checkout"' in checkout
        out = subprocess.run(checkout, shell=True, capture_output=True, text=True, timeout=30)
        body = json.loads(out.stdout)
        # the default rules (loaded on first start) fill the paint accessories
        assert {
            "protective-gloves",
            "masking-tape",
            "paint-roller",
            "drop-cloth",
            "construction-waste-bags",
        } & {a["category"] for a in body["accessories"]}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
