"""Issue 13 item 7: with no model loaded, 20 anonymous purchase events for a made-up SKU made it
the top item for every shopper, and the in-process online state grew without bound. Now only
SKUs of the served catalogue feed online state, and that state is capped (LRU)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from feature_store.event_log import Event
from feature_store.online_state import InProcessOnlineState
from serving.app import create_app
from serving.schemas import EXAMPLE_TILE, EXAMPLE_WALLPAPER

EVIL = "BUY-MY-STUFF"


def _poison(client: TestClient, prefix: str) -> None:
    events = [
        {
            "event_id": f"{prefix}-{i}",
            "type": "purchase",
            "sku": EVIL,
            "session_id": f"bot-{i}",
            "ts": "2026-03-01T10:00:00Z",
        }
        for i in range(20)
    ]
    assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 20


def test_no_model_events_do_not_make_an_arbitrary_string_popular(settings_for) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for())) as client:
        _poison(client, "p")
        for body in (
            {"basket": [], "k": 5},
            {"basket": [{"sku": "X"}], "session_id": "victim", "k": 5},
        ):
            items = client.post("/v1/recommendations", json=body).json()["items"]
            assert EVIL not in [i["sku"] for i in items]
        assert client.app.state.online_state.popular(5) == []


def test_with_a_model_only_catalogue_skus_feed_online_state(settings_for, bundle_dir) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for(model_uri=str(bundle_dir)))) as client:
        _poison(client, "q")
        ev = {
            "event_id": "real-1",
            "type": "purchase",
            "sku": EXAMPLE_TILE,
            "session_id": "s1",
            "ts": "2026-03-01T10:00:00Z",
        }
        assert client.post("/v1/events", json={"events": [ev]}).json()["accepted"] == 1
        assert [sku for sku, _ in client.app.state.online_state.popular(5)] == [EXAMPLE_TILE]
        body = client.post(
            "/v1/recommendations", json={"basket": [], "session_id": "bot-1", "k": 10}
        ).json()
        assert EVIL not in [i["sku"] for i in body["items"]]


def test_in_process_state_is_bounded() -> None:
    state = InProcessOnlineState(max_shoppers=100, max_popular_skus=1000)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    events = [
        Event(f"e{i}", "view", f"SKU-{i}", t0 + timedelta(seconds=i), session_id=f"s{i}")
        for i in range(5000)
    ]
    for start in range(0, len(events), 500):
        state.apply(events[start : start + 500], {e.sku: {"loft": 1.0} for e in events})
    assert len(state._recent) <= 100 and len(state._style) <= 100
    assert len(state._popularity) <= 1000
    # the most recent shoppers are the ones kept
    assert state.user_context(None, "s4999") is not None and state.user_context(None, "s0") is None
    state.apply([Event("w", "purchase", EXAMPLE_WALLPAPER, t0, session_id="s4999")])
    assert state.popular(1)[0][0] == EXAMPLE_WALLPAPER
