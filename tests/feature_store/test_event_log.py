"""Event log: idempotent, durable, exported in the interactions contract (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from feature_store.event_log import Event, EventLog
from recsys.data.interactions import load_interactions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _events(n: int, prefix: str = "e") -> list[Event]:
    types = ("view", "add_to_cart", "purchase")
    return [
        Event(
            event_id=f"{prefix}{i}",
            type=types[i % 3],
            sku=f"SKU-{i % 5}",
            ts=T0 + timedelta(minutes=i),
            user_id=f"u{i % 2}",
            session_id=f"s{i % 2}",
        )
        for i in range(n)
    ]


def _check_log(log: EventLog) -> None:
    first = log.append(_events(10))
    assert first.accepted == 10 and first.duplicates == 0
    again = log.append(_events(12))  # 10 repeats + 2 new
    assert again.accepted == 2 and again.duplicates == 10
    assert {e.event_id for e in again.inserted} == {"e10", "e11"}
    within = log.append([_events(13)[12], _events(13)[12]])  # the same id twice in one batch
    assert within.accepted == 1 and within.duplicates == 1
    assert log.count() == 13
    frame = log.read_frame()
    assert list(frame["event_id"]) == [f"e{i}" for i in range(13)]  # ts order
    assert frame["ts"].iloc[0] == pd.Timestamp(T0)


def test_sqlite_log_is_idempotent(tmp_path) -> None:
    log = EventLog(f"sqlite:///{tmp_path / 'events.db'}")
    _check_log(log)
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    log.dispose()
    reopened = EventLog(f"sqlite:///{tmp_path / 'events.db'}")
    assert reopened.count() == 13


@pytest.mark.postgres
def test_postgres_log_is_idempotent(postgres_url: str) -> None:
    log = EventLog(postgres_url, table_name=f"events_test_{uuid.uuid4().hex[:10]}")
    try:
        _check_log(log)
    finally:
        log.drop()
        log.dispose()


def test_export_writes_the_interactions_contract(tmp_path) -> None:
    log = EventLog(f"sqlite:///{tmp_path / 'events.db'}")
    log.append(_events(6))
    log.append([Event("lone", "view", "SKU-9", T0 + timedelta(days=1))])  # guest, no session
    log.append([Event("o1", "purchase", "SKU-1", T0 + timedelta(days=2), 2, "u0", None, "ORD-1")])
    out = tmp_path / "export" / "events.parquet"
    assert log.export(out) == 8
    inter = load_interactions(out)
    frame = inter.frame
    assert set(frame.columns) >= {"order_id", "user_id", "sku", "quantity", "ts", "event"}
    assert frame.loc[frame["sku"] == "SKU-9", "order_id"].item() == "lone"
    assert frame.loc[frame["order_id"] == "ORD-1", "quantity"].item() == 2
    assert set(frame["order_id"]) >= {"s0", "s1"}
    assert log.export(tmp_path / "since.parquet", since=T0 + timedelta(hours=12)) == 2


def test_empty_log_exports_an_empty_file(tmp_path) -> None:
    log = EventLog(f"sqlite:///{tmp_path / 'events.db'}")
    assert log.export(tmp_path / "empty.parquet") == 0
    empty = pd.read_parquet(tmp_path / "empty.parquet")
    assert len(empty) == 0
    assert set(empty.columns) >= {"order_id", "user_id", "sku", "quantity", "ts", "event"}


def test_bad_events_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="unknown event type 'click'"):
        Event("x", "click", "SKU-1", T0)
    with pytest.raises(ValueError, match="quantity must be >= 1"):
        Event("x", "view", "SKU-1", T0, quantity=0)
    naive = Event("x", "view", "SKU-1", datetime(2026, 1, 1))
    assert naive.ts.tzinfo is UTC
