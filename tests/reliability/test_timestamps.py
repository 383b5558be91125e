"""Issue 13 items 3 and 4: one validation for every timestamp from outside (window, UTC), UTC
on every backend (SQLite used to drop the offset), and ``recsys events export`` robust to
rows stored before the check existed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from feature_store.event_log import EventLog
from recsys.rules.model import RuleValidationError, parse_rule
from serving.app import create_app
from serving.cli import export_command
from serving.schemas import EXAMPLE_TILE


def _event(eid: str, ts: str) -> dict:
    return {"event_id": eid, "type": "view", "sku": EXAMPLE_TILE, "ts": ts}


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+02:00"]
)
def test_events_outside_the_window_get_422_naming_the_range(settings_for, ts: str) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for())) as client:
        r = client.post(
            "/v1/events",
            json={"events": [_event("ok-1", "2026-03-01T12:00:00Z"), _event("bad", ts)]},
        )
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["errors"][0]["field"] == "events[1].ts"
        assert "2000-01-01 to 2100-01-01" in body["errors"][0]["message"]
        assert client.app.state.event_log.count() == 0  # the batch is refused as a whole


def test_rule_validity_window_uses_the_same_check() -> None:
    doc = {
        "id": "r1",
        "name": "r",
        "trigger": {"categories": ["tile"]},
        "suggest": {"categories": ["grout"]},
    }
    with pytest.raises(RuleValidationError, match="allowed range"):
        parse_rule({**doc, "valid_to": "9999-12-31T00:00:00Z"})
    rule = parse_rule({**doc, "valid_from": "2026-03-01T12:00:00+02:00"})
    assert rule.valid_from == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _store_roundtrip(url: str, table: str) -> None:
    from feature_store.event_log import Event

    log = EventLog(url, table_name=table)
    try:
        log.append(
            [
                Event(
                    "tz-1",
                    "view",
                    EXAMPLE_TILE,
                    datetime.fromisoformat("2026-03-01T12:00:00+02:00"),
                ),
                Event(
                    "tz-2",
                    "view",
                    EXAMPLE_TILE,
                    datetime.fromisoformat("2026-03-01T09:30:00-05:00"),
                ),
                Event("tz-3", "view", EXAMPLE_TILE, datetime(2026, 3, 1, 11, 0)),  # naive = UTC
            ]
        )
        frame = log.read_frame().set_index("event_id")
        assert frame.loc["tz-1", "ts"] == pd.Timestamp("2026-03-01T10:00:00Z")
        assert frame.loc["tz-2", "ts"] == pd.Timestamp("2026-03-01T14:30:00Z")
        assert frame.loc["tz-3", "ts"] == pd.Timestamp("2026-03-01T11:00:00Z")
        since = datetime.fromisoformat("2026-03-01T12:30:00+02:00")  # 10:30 UTC
        assert list(log.read_frame(since)["event_id"]) == ["tz-3", "tz-2"]
    finally:
        log.drop()
        log.dispose()


def test_sqlite_keeps_the_instant_of_an_offset_timestamp(tmp_path) -> None:  # noqa: ANN001
    _store_roundtrip(f"sqlite:///{tmp_path / 'events.db'}", "events")


@pytest.mark.postgres
def test_postgres_keeps_the_instant_of_an_offset_timestamp(postgres_url: str) -> None:
    _store_roundtrip(postgres_url, f"events_tz_{uuid.uuid4().hex[:8]}")


def test_events_export_survives_out_of_range_rows_stored_earlier(
    tmp_path, monkeypatch, capsys
) -> None:  # noqa: ANN001
    db = tmp_path / "events.db"
    url = f"sqlite:///{db}"
    log = EventLog(url)
    now = datetime.now(UTC)
    rows = [
        ("old", datetime(1, 1, 1)),
        ("far", datetime(9999, 12, 31, 23, 59, 59)),
        ("good", datetime(2026, 3, 1, 12, 0)),
    ]
    with log.engine.begin() as conn:  # what a store written before the check may hold
        conn.execute(
            sa.insert(log.table),
            [
                {
                    "event_id": e,
                    "type": "view",
                    "sku": EXAMPLE_TILE,
                    "quantity": 1,
                    "ts": ts,
                    "received_at": now,
                }
                for e, ts in rows
            ],
        )
    log.dispose()
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_DATABASE_URL", url)
    out = tmp_path / "export.parquet"

    class Args:
        since: str | None = None

    for since in (None, "2020-01-01T00:00:00Z"):
        args = Args()
        args.out, args.since = out, since  # type: ignore[attr-defined]
        assert export_command(args) == 0  # type: ignore[arg-type]
        assert list(pd.read_parquet(out)["sku"]) == [EXAMPLE_TILE]
    args = Args()
    args.out, args.since = out, "0001-01-01T00:00:00Z"  # type: ignore[attr-defined]
    assert export_command(args) == 2  # type: ignore[arg-type]
    assert "allowed range" in capsys.readouterr().err
