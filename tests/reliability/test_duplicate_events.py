"""Issue 13 item 10: a duplicate ``event_id`` with a different payload was silently dropped.
It is still not applied twice (the stored event wins), but it is counted, logged and reported."""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from serving.app import create_app
from serving.schemas import EXAMPLE_TILE, EXAMPLE_WALLPAPER


def test_duplicate_id_with_other_payload_is_reported(settings_for, caplog) -> None:  # noqa: ANN001
    ev = {
        "event_id": "dup-1",
        "type": "view",
        "sku": EXAMPLE_TILE,
        "ts": "2026-03-01T12:00:00+02:00",
    }
    with TestClient(create_app(settings_for())) as client:
        assert client.post("/v1/events", json={"events": [ev]}).json()["accepted"] == 1
        same = client.post(
            "/v1/events", json={"events": [{**ev, "ts": "2026-03-01T10:00:00Z"}]}
        ).json()
        assert same["duplicates"] == 1 and same["conflicting_duplicates"] == []  # same instant
        with caplog.at_level(logging.WARNING):
            other = client.post(
                "/v1/events", json={"events": [{**ev, "sku": EXAMPLE_WALLPAPER}]}
            ).json()
        assert other["accepted"] == 0 and other["duplicates"] == 1
        assert other["conflicting_duplicates"] == ["dup-1"]
        assert any("different payload" in r.message for r in caplog.records)
        assert "recsys_events_conflicting_duplicate_total 1.0" in client.get("/metrics").text
        stored = client.app.state.event_log.read_frame()
        assert list(stored["sku"]) == [EXAMPLE_TILE]
