"""Replay before publishing: a draft rule (and a draft control) over the event store's recent
baskets, overlap warnings on save (``recsys.rules.replay`` + ``POST /v1/rules/replay``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient

from feature_store.event_log import Event, EventLog
from recsys.rules.engine import RuleEngine
from recsys.rules.mining import mine_suggestions
from recsys.rules.replay import baskets_from_orders, replay_rule
from recsys.settings import Settings
from tests.rules.apps import KEY, rules_app
from tests.rules.conftest import make_catalog, make_history
from tests.rules.test_engine import rule

AUTH = {"Authorization": f"Bearer {KEY}", "X-Author": "alice"}
CATALOG = make_catalog()
ROW = {s: CATALOG.ids.row(s) for s in CATALOG.ids.to_list()}


def test_replay_counts_firing_shown_and_overlaps() -> None:
    rules = [
        rule(
            "draft",
            priority=1,
            reason="under laminate",
            trigger={"categories": ["laminate"]},
            suggest={"categories": ["underlay", "skirting-boards"], "max_items": 2},
        ),
        rule(
            "older",
            priority=5,
            reason="finish the floor",
            trigger={"categories": ["laminate"]},
            suggest={"categories": ["underlay"]},
        ),
    ]
    engine = RuleEngine.compile(rules, CATALOG)
    baskets = [
        ([ROW["L1"]], [1]),
        ([ROW["L1"], ROW["P1"]], [1, 2]),
        ([ROW["P1"]], [1]),
        ([ROW["T1"]], [3]),
    ]
    r = replay_rule(engine, "draft", baskets)
    assert (r.baskets, r.fired, r.fired_share) == (4, 2, 0.5)
    # "older" has the higher priority: it places underlay; the draft places skirting boards
    assert dict(r.shown) == {ROW["S1"]: 2}
    assert dict(r.overlaps) == {"older": 2} and r.overlap_categories == {
        "older": {int(CATALOG.category_codes[ROW["U1"]])}
    }
    grouped = baskets_from_orders(
        np.asarray(["a", "a", "b", "a"]), np.asarray([3, -1, 4, 3]), np.asarray([1, 1, 2, 2])
    )
    assert grouped == [([3], [3]), ([4], [2])]


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, merchandiser_key=KEY, rules_poll_seconds=0.2)
    log = EventLog(f"sqlite:///{tmp_path / 'events.db'}", table_name="replay_events")
    now = datetime.now(UTC)
    events = []
    for i in range(10):  # 10 recent orders: 6 with laminate, 4 with paint; 3 old laminate orders
        sku = "L1" if i < 6 else "P1"
        events.append(
            Event(
                event_id=f"e{i}",
                type="purchase",
                sku=sku,
                ts=now - timedelta(days=1),
                order_id=f"o{i}",
                user_id=f"u{i}",
            )
        )
    for i in range(3):
        events.append(
            Event(
                event_id=f"old{i}",
                type="purchase",
                sku="L1",
                ts=now - timedelta(days=30),
                order_id=f"old{i}",
                user_id="x",
            )
        )
    assert log.append(events).accepted == 13
    with TestClient(
        rules_app(settings, CATALOG, mine_suggestions(CATALOG, make_history()), event_log=log)
    ) as c:
        yield c
    log.dispose()


def test_replay_endpoint_and_overlap_warnings(client) -> None:
    draft = {
        "id": "lam-skirting",
        "name": "Laminate needs skirting",
        "trigger": {"categories": ["laminate"]},
        "suggest": {"categories": ["skirting-boards", "underlay"], "max_items": 2},
    }
    r = client.post("/v1/rules/replay", json={"days": 7, "draft": draft}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["baskets"] == 10 and body["rule"]["fired"] == 6 and body["rule"]["fired_share"] == 0.6
    )
    assert {p["sku"]: p["count"] for p in body["rule"]["most_shown"]} == {"S1": 6, "U1": 6}
    assert (
        body["rule"]["overlaps"] == []
    )  # the default laminate rule names laminate-flooring, absent here
    week = client.post("/v1/rules/replay", json={"days": 60, "draft": draft}, headers=AUTH).json()
    assert week["baskets"] == 13 and week["rule"]["fired"] == 9
    paint = {
        "id": "paint-gloves-2",
        "name": "More gloves",
        "trigger": {"categories": ["wall-paint"]},
        "suggest": {"categories": ["protective-gloves"]},
    }
    r = client.post("/v1/rules/replay", json={"draft": paint}, headers=AUTH).json()["rule"]
    assert r["fired"] == 4 and {o["rule_id"] for o in r["overlaps"]} >= {"paint-essentials"}
    assert [e["accessory"] for e in r["evidence"]] == [
        "protective-gloves"
    ]  # mined: came back for it
    # overlap warnings on save; nothing was stored by the replays
    assert client.get("/v1/rules/paint-gloves-2", headers=AUTH).status_code == 404
    saved = client.post("/v1/rules", json=paint, headers=AUTH).json()
    assert any(
        w.startswith("paint-essentials already suggests protective-gloves for wall-paint")
        for w in saved["warnings"]
    )
    assert client.post("/v1/rules/replay", json={"days": 7}, headers=AUTH).status_code == 422
    # no recommender in this app: a control cannot be replayed, and the answer says so
    ctl = {"id": "hide-u1", "name": "h", "action": "hide", "target": {"skus": ["U1"]}}
    note = client.post("/v1/rules/replay", json={"draft_control": ctl}, headers=AUTH).json()
    assert note["control"] is None and "no recommender loaded" in note["note"]
