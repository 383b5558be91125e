"""Issue 13 item 6: one event with a NUL character failed a whole PostgreSQL batch with 503
"retry", for ever, and the good events were never stored. Now the bad event is refused with a
per-event error and the rest of the batch is stored, on every backend."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from feature_store.event_log import EventLog
from serving.app import create_app
from serving.schemas import EXAMPLE_TILE, EXAMPLE_WALLPAPER


def _check_batch(client: TestClient, url: str) -> None:
    run = uuid.uuid4().hex[:10]
    events = [
        {"event_id": f"{run}-1", "type": "view", "sku": EXAMPLE_TILE, "ts": "2026-03-01T12:00:00Z"},
        {
            "event_id": f"{run}-2",
            "type": "view",
            "sku": "SKU\x00-evil",
            "ts": "2026-03-01T12:00:01Z",
        },
        {
            "event_id": f"{run}-3",
            "type": "purchase",
            "sku": EXAMPLE_WALLPAPER,
            "session_id": "s\x00",
            "ts": "2026-03-01T12:00:02Z",
        },
        {
            "event_id": f"{run}-4",
            "type": "view",
            "sku": EXAMPLE_WALLPAPER,
            "ts": "2026-03-01T12:00:03Z",
        },
    ]
    r = client.post("/v1/events", json={"events": events})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    assert [(p["index"], p["field"]) for p in body["rejected"]] == [
        (1, "events[1].sku"),
        (2, "events[2].session_id"),
    ]
    assert all("NUL" in p["message"] for p in body["rejected"])
    again = client.post("/v1/events", json={"events": events}).json()  # a retry is not a 503
    assert again["accepted"] == 0 and again["duplicates"] == 2 and len(again["rejected"]) == 2
    log = EventLog(url)
    try:
        stored = set(log.read_frame()["event_id"])
    finally:
        log.dispose()
    assert {f"{run}-1", f"{run}-4"} <= stored and not {f"{run}-2", f"{run}-3"} & stored


def test_nul_event_is_refused_alone_on_sqlite(settings_for, tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'events.db'}"
    with TestClient(create_app(settings_for(database_url=url))) as client:
        _check_batch(client, url)


@pytest.mark.postgres
def test_nul_event_is_refused_alone_on_postgres(settings_for, postgres_url) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for(database_url=postgres_url))) as client:
        _check_batch(client, postgres_url)
