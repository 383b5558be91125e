"""Every answer is identifiable and lands in the impression log: through the app, and through
real uvicorn processes stopped cleanly (nothing lost) or with kill -9 (only the last flush
window may be lost)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from feature_store.impression_log import ImpressionLog
from serving.app import create_app
from serving.schemas import EXAMPLE_PAINT, EXAMPLE_TILE, EXAMPLE_WALLPAPER

CART = {"basket": [{"sku": EXAMPLE_TILE}, {"sku": EXAMPLE_WALLPAPER}], "page": "cart", "k": 5}
CHECKOUT = {
    "basket": [{"sku": EXAMPLE_PAINT, "quantity": 2}],
    "page": "checkout",
    "k": 4,
    "session_id": "sess-1",
}


def test_answers_carry_id_variant_slots_and_positions(settings_for, bundle_dir, tmp_path) -> None:  # noqa: ANN001
    settings = settings_for(model_uri=str(bundle_dir))
    with TestClient(create_app(settings)) as c:
        a = c.post("/v1/recommendations", json=CHECKOUT).json()
        b = c.post("/v1/recommendations", json=CHECKOUT).json()
    assert len(a["recommendation_id"]) == 32 and a["recommendation_id"] != b["recommendation_id"]
    assert a["variant"] == "default" and a["experiment"] is None
    assert [(i["slot"], i["position"]) for i in a["items"]] == [("items", p) for p in range(1, 5)]
    assert a["accessories"], "the default rules fill the checkout accessory slots"
    assert [(x["slot"], x["position"]) for x in a["accessories"]] == [
        ("accessories", p) for p in range(1, len(a["accessories"]) + 1)
    ]
    # the app stopped cleanly: both impressions are stored, exactly as answered
    stored = ImpressionLog(settings.resolved_database_url).read([a["recommendation_id"]])
    imp = stored[a["recommendation_id"]]
    assert imp.placement == "checkout" and imp.session_id == "sess-1" and imp.variant == "default"
    assert imp.model_version == a["model_version"]
    assert imp.rules_version is not None
    shown = [(s.sku, s.slot, s.position) for s in imp.items]
    assert shown == [(i["sku"], "items", i["position"]) for i in a["items"]] + [
        (x["sku"], "accessories", x["position"]) for x in a["accessories"]
    ]


def test_impressions_name_the_rules_and_controls_behind_each_line(settings_for, bundle_dir) -> None:  # noqa: ANN001
    settings = settings_for(model_uri=str(bundle_dir), merchandiser_key="k")
    auth = {"Authorization": "Bearer k"}
    with TestClient(create_app(settings)) as c:
        before = c.post("/v1/recommendations", json=CHECKOUT).json()
        boosted, hidden = before["items"][1]["sku"], before["items"][0]["sku"]
        for control in (
            {"id": "boost-one", "name": "b", "action": "boost", "multiplier": 2.0,
             "target": {"skus": [boosted]}},
            {"id": "hide-one", "name": "h", "action": "hide", "target": {"skus": [hidden]}},
        ):  # fmt: skip
            assert c.post("/v1/controls", json=control, headers=auth).status_code == 201
        a = c.post("/v1/recommendations", json=CHECKOUT).json()
    imp = ImpressionLog(settings.resolved_database_url).read([a["recommendation_id"]])[
        a["recommendation_id"]
    ]
    assert imp.controls == ("boost-one", "hide-one")
    lines = {(s.slot, s.sku): s for s in imp.items}
    assert hidden not in {i["sku"] for i in a["items"]}
    assert lines[("items", boosted)].control_ids == ("boost-one",)
    assert all(s.control_ids == () for s in imp.items if s.sku != boosted)
    for acc in a["accessories"]:  # the rule that placed each line first
        assert lines[("accessories", acc["sku"])].rule_ids[0] == acc["rule_id"]
    assert all(s.rule_ids == () for s in imp.items if s.slot == "items")


def test_logging_off_still_identifies_but_stores_nothing(settings_for, bundle_dir) -> None:  # noqa: ANN001
    settings = settings_for(model_uri=str(bundle_dir), impression_log_enabled=False)
    with TestClient(create_app(settings)) as c:
        body = c.post("/v1/recommendations", json=CART).json()
    assert body["recommendation_id"] and body["items"][0]["position"] == 1
    assert ImpressionLog(settings.resolved_database_url).count() == 0


def _hammer(base: str, stop: threading.Event, answered: list[tuple[float, str]]) -> None:
    with httpx.Client(base_url=base, timeout=5) as c:
        while not stop.is_set():
            try:
                r = c.post("/v1/recommendations", json=CART)
            except httpx.HTTPError:
                return  # the server died mid-request
            if r.status_code == 200:
                answered.append((time.monotonic(), r.json()["recommendation_id"]))


@pytest.mark.slow
def test_clean_stop_loses_no_impression(server_factory, bundle_dir, tmp_path) -> None:  # noqa: ANN001
    db = tmp_path / "imp.db"
    env = {
        "RECSYS_DATABASE_URL": f"sqlite:///{db}",
        "RECSYS_MODEL_URI": str(bundle_dir),
        "RECSYS_IMPRESSION_FLUSH_SECONDS": "3600",
    }  # only the shutdown drain can write them
    server = server_factory(env).start()
    answered: list[tuple[float, str]] = []
    stop = threading.Event()
    sender = threading.Thread(target=_hammer, args=(server.base, stop, answered))
    sender.start()
    time.sleep(2.0)
    stop.set()
    sender.join(10)
    server.stop()  # SIGTERM: uvicorn runs the lifespan shutdown
    assert server.proc is not None and server.proc.returncode is not None, server.proc
    assert len(answered) >= 20
    assert {rid for _, rid in answered} <= ImpressionLog(f"sqlite:///{db}").ids()


@pytest.mark.slow
def test_kill_9_loses_at_most_the_last_flush_window(server_factory, bundle_dir, tmp_path) -> None:  # noqa: ANN001
    """What a kill -9 can lose: impressions queued since the last flush. Everything answered
    more than two flush windows (plus a commit's slack) before the kill is stored."""
    flush = 0.5
    db = tmp_path / "imp.db"
    env = {
        "RECSYS_DATABASE_URL": f"sqlite:///{db}",
        "RECSYS_MODEL_URI": str(bundle_dir),
        "RECSYS_IMPRESSION_FLUSH_SECONDS": str(flush),
    }
    server = server_factory(env).start()
    answered: list[tuple[float, str]] = []
    stop = threading.Event()
    sender = threading.Thread(target=_hammer, args=(server.base, stop, answered))
    sender.start()
    time.sleep(4.0)
    killed_at = time.monotonic()
    server.kill9()
    stop.set()
    sender.join(10)
    stored = ImpressionLog(f"sqlite:///{db}").ids()
    old = {rid for t, rid in answered if t < killed_at - (2 * flush + 0.5)}
    recent = {rid for t, rid in answered if t >= killed_at - (2 * flush + 0.5)}
    assert len(old) >= 20
    assert old <= stored, f"{len(old - stored)} impressions older than the flush window lost"
    lost = {rid for _, rid in answered} - stored
    assert lost <= recent  # only the last window can be missing


def test_events_name_their_answer_and_unknown_ids_are_accepted(settings_for, bundle_dir) -> None:  # noqa: ANN001
    from feature_store.attribution import EventContextLog, attribute
    from feature_store.event_log import EventLog

    settings = settings_for(model_uri=str(bundle_dir))
    ts = "2030-01-01T12:00:00Z"
    with TestClient(create_app(settings)) as c:
        ans = c.post("/v1/recommendations", json=CHECKOUT).json()
        rid, first = ans["recommendation_id"], ans["items"][0]
        batch = {
            "events": [
                {
                    "event_id": "e-click",
                    "type": "view",
                    "sku": first["sku"],
                    "session_id": "sess-1",
                    "ts": ts,
                    "recommendation_id": rid,
                    "position": 1,
                },
                {
                    "event_id": "e-buy",
                    "type": "purchase",
                    "sku": first["sku"],
                    "session_id": "sess-1",
                    "ts": ts,
                    "quantity": 2,
                    "recommendation_id": rid,
                    "position": 1,
                    "price": 12.5,
                },
                {
                    "event_id": "e-ghost",
                    "type": "add_to_cart",
                    "sku": first["sku"],
                    "session_id": "sess-1",
                    "ts": ts,
                    "recommendation_id": "never-issued",
                },
            ]
        }
        r = c.post("/v1/events", json=batch)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 3
        bad = dict(batch["events"][0], event_id="e-bad", position=0)
        r = c.post("/v1/events", json={"events": [bad]})
        assert r.status_code == 422 and "position" in r.text
    log = EventLog(settings.resolved_database_url)
    out = attribute(
        log.read_frame(),
        EventContextLog(log.engine).read_frame(),
        ImpressionLog(settings.resolved_database_url).read_frame(),
        window_hours=24,
    ).set_index("event_id")
    assert out.loc["e-click", "rule"] == "named" and out.loc["e-click", "recommendation_id"] == rid
    assert out.loc["e-buy", "revenue"] == 25.0 and out.loc["e-buy", "variant"] == "default"
    assert out.loc["e-ghost", "reason"] == "unknown_id"


def test_a_bought_accessory_shows_in_its_rules_effect(settings_for, bundle_dir) -> None:  # noqa: ANN001
    """The whole loop in one process: answers logged, an accessory carted and bought naming
    its answer, the rule's effect counts it; a rule that never fired stays at zero."""
    from datetime import UTC, datetime

    settings = settings_for(model_uri=str(bundle_dir), merchandiser_key="k")
    auth = {"Authorization": "Bearer k"}
    with TestClient(create_app(settings)) as c:
        a = c.post("/v1/recommendations", json=CHECKOUT).json()
        acc = a["accessories"][0]
        named = {
            "session_id": "sess-1",
            "ts": datetime.now(UTC).isoformat(),
            "recommendation_id": a["recommendation_id"],
            "position": acc["position"],
            "sku": acc["sku"],
        }
        events = [
            {"event_id": "e-cart", "type": "add_to_cart", **named},
            {"event_id": "e-buy", "type": "purchase", **named, "quantity": 3, "price": 2.5},
        ]
        assert c.post("/v1/events", json={"events": events}).status_code in (200, 202)
        eff = c.get(f"/v1/rules/{acc['rule_id']}/effect", params={"days": 1}, headers=auth).json()
        lines = sum(1 for x in a["accessories"] if x["rule_id"] == acc["rule_id"])
        assert eff["impressions"] >= lines and eff["baskets"] == 1
        assert (eff["added"], eff["bought"], eff["attached"]) == (1, 1, 1)
        assert eff["revenue"] == pytest.approx(7.5)
        idle = c.get("/v1/rules/wallpaper-paste/effect", headers=auth).json()
        assert (idle["impressions"], idle["baskets"], idle["revenue"]) == (0, 0, 0.0)
