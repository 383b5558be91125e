"""The impression log on SQLite and real PostgreSQL, and the recorder that batches into it."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest

from feature_store.impression_log import Impression, ImpressionLog, ShownItem
from serving.impressions import ImpressionRecorder


def _imp(rid: str, **kw) -> Impression:  # noqa: ANN003
    values = dict(
        recommendation_id=rid,
        ts=datetime(2026, 3, 1, 12, tzinfo=UTC),
        placement="checkout",
        user_id=None,
        session_id="s1",
        experiment="exp",
        variant="a",
        model_version="m/1",
        rules_version="7",
        items=(
            ShownItem("SKU-1", "items", 1),
            ShownItem("SKU-2", "items", 2),
            ShownItem("SKU-9", "accessories", 1),
        ),
    )
    values.update(kw)
    return Impression(**values)


def _roundtrip(log: ImpressionLog) -> None:
    assert log.append([_imp("r1"), _imp("r2", session_id="s2", variant="b")]) == 2
    assert log.append([_imp("r1")]) == 0  # a retried batch is not stored twice
    got = log.read(["r1", "nope"])
    assert set(got) == {"r1"}
    assert got["r1"] == _imp("r1")
    frame = log.read_frame(experiment="exp")
    assert list(frame["recommendation_id"]) == ["r1", "r2"]
    assert frame.loc[0, "items"][2] == ("SKU-9", "accessories", 1)
    assert log.count() == 2


def test_sqlite_roundtrip(tmp_path) -> None:  # noqa: ANN001
    _roundtrip(ImpressionLog(f"sqlite:///{tmp_path / 'i.db'}"))


@pytest.mark.postgres
def test_postgres_roundtrip(postgres_url: str) -> None:
    log = ImpressionLog(postgres_url, table_name=f"impressions_test_{uuid.uuid4().hex[:10]}")
    try:
        _roundtrip(log)
    finally:
        log.drop()
        log.dispose()


def test_recorder_writes_in_batches_off_the_caller_and_close_drains(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'i.db'}"
    log = ImpressionLog(url)
    batches: list[int] = []
    rec = ImpressionRecorder(log, flush_seconds=30.0, batch_size=100, on_written=batches.append)
    rec.start()
    t0 = time.perf_counter()
    for i in range(250):
        rec.record(_imp(f"r{i}"))
    assert time.perf_counter() - t0 < 0.5  # queuing only: no database work on the caller
    assert ImpressionLog(url).count() == 0  # nothing written yet (flush every 30 s)
    rec.close()
    assert ImpressionLog(url).count() == 250
    assert batches == [100, 100, 50]


def test_recorder_flushes_on_its_own_and_keeps_a_failed_batch(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'i.db'}"
    log = ImpressionLog(url)
    real_append = log.append
    fail = threading.Event()
    fail.set()

    def flaky(batch):  # noqa: ANN001, ANN202 - the database is down, then back
        if fail.is_set():
            raise OSError("database unreachable")
        return real_append(batch)

    log.append = flaky  # type: ignore[method-assign]
    rec = ImpressionRecorder(log, flush_seconds=0.05).start()
    for i in range(10):
        rec.record(_imp(f"r{i}"))
    time.sleep(0.3)
    assert rec.failed_batches >= 1 and rec.written == 0
    fail.clear()
    deadline = time.monotonic() + 5
    while rec.written < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rec.written == 10 and ImpressionLog(url).count() == 10
    rec.close()


def test_full_queue_drops_and_counts_never_blocks(tmp_path) -> None:  # noqa: ANN001
    rec = ImpressionRecorder(ImpressionLog(f"sqlite:///{tmp_path / 'i.db'}"), max_queue=5)
    for i in range(8):
        rec.record(_imp(f"r{i}"))
    assert rec.dropped == 3 and rec.pending() == 5
    rec.close()
    assert rec.written == 5
