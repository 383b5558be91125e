"""Rules inside the real service: ``create_app`` with a fitted bundle. The rules runtime sees the
served catalog and recommender, preview shows what the recommender would put in the checkout
slots, mined suggestions come from the bundle, and a rule change reaches ``/v1/recommendations``
without a restart."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recsys.settings import Settings

pytestmark = pytest.mark.slow  # fits a small pipeline

KEY = "merch-key"
AUTH = {"Authorization": f"Bearer {KEY}", "X-Author": "it"}


@pytest.fixture
def client(fitted_bundle, tmp_path):
    from serving.app import create_app

    path, _ = fitted_bundle
    settings = Settings(
        data_dir=tmp_path,
        model_uri=str(path),
        merchandiser_key=KEY,
        reload_poll_seconds=0,
        rules_poll_seconds=0.2,
    )
    with TestClient(create_app(settings)) as c:
        yield c


def _paint_sku(world) -> str:
    frame = world.catalog.frame
    return str(frame.loc[(frame["category"] == "wall-paint") & frame["in_stock"], "sku"].iloc[0])


def test_preview_uses_the_served_recommender(client, fitted_bundle) -> None:
    _, world = fitted_bundle
    runtime = client.app.state.rules_runtime
    assert runtime.engine() is not None and len(runtime.engine()) >= 5
    r = client.post(
        "/v1/rules/preview",
        headers=AUTH,
        json={"basket": [{"sku": _paint_sku(world), "quantity": 1}], "page": "checkout"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "recommender" and body["items"]
    assert "paint-essentials" in [f["rule_id"] for f in body["fired"]]
    slots = [a["category"] for a in body["accessories"] if a["rule_id"] == "paint-essentials"]
    assert set(slots) <= {
        "paint-roller",
        "masking-tape",
        "protective-gloves",
        "drop-cloth",
        "construction-waste-bags",
    }
    # the rule suggests five categories for three slots: three different accessories, not
    # three of the most popular one
    assert len(slots) == 3 and len(set(slots)) == 3, slots


def test_mined_suggestions_come_from_the_bundle(client) -> None:
    items = client.get("/v1/rules/suggestions", headers=AUTH).json()["suggestions"]
    assert items and all(s["sentence"] for s in items)


def test_a_rule_change_reaches_recommendations_without_restart(client, fitted_bundle) -> None:
    _, world = fitted_bundle
    paint = _paint_sku(world)
    req = {"basket": [{"sku": paint, "quantity": 1}], "page": "checkout", "k": 5}

    def rules_in_answer() -> set[str]:
        r = client.post("/v1/recommendations", json=req)
        assert r.status_code == 200, r.text
        return {a["rule_id"] for a in r.json()["accessories"]}

    assert "paint-essentials" in rules_in_answer()
    version = client.get("/v1/rules/paint-essentials", headers=AUTH).json()["version"]
    assert (
        client.post(
            "/v1/rules/paint-essentials/disable", params={"version": version}, headers=AUTH
        ).status_code
        == 200
    )
    assert "paint-essentials" not in rules_in_answer()


def test_answer_controls_act_on_the_served_list_and_are_named_in_preview_only(
    client, fitted_bundle
) -> None:
    _, world = fitted_bundle
    req = {"basket": [{"sku": _paint_sku(world), "quantity": 1}], "page": "checkout", "k": 6}
    before = client.post("/v1/recommendations", json=req).json()
    items = before["items"]
    assert len(items) == 6
    target, hidden_cat = items[3]["sku"], items[0]["category"]
    assert items[3]["category"] != hidden_cat
    pin = {
        "id": "pin-it",
        "name": "Seasonal",
        "action": "pin",
        "target": {"skus": [target]},
        "position": 1,
        "placements": ["checkout"],
    }
    hide = {
        "id": "hide-cat",
        "name": "Range ends",
        "action": "hide",
        "target": {"categories": [hidden_cat]},
    }
    assert client.post("/v1/controls", json=pin, headers=AUTH).status_code == 201
    assert client.post("/v1/controls", json=hide, headers=AUTH).status_code == 201
    after = client.post("/v1/recommendations", json=req).json()["items"]
    assert after[0]["sku"] == target, "pinned at position 1"
    assert hidden_cat not in [i["category"] for i in after], "hidden category never shown"
    assert not any("pin-it" in i["reason"] for i in after), "shoppers do not see control names"
    cart = client.post("/v1/recommendations", json={**req, "page": "cart"}).json()["items"]
    assert hidden_cat not in [i["category"] for i in cart]  # hide applies on every page
    preview = client.post("/v1/rules/preview", headers=AUTH, json={**req, "k": 6}).json()
    first = preview["items"][0]
    assert (
        first["sku"] == target
        and first["controls"] == ["pin-it"]
        and "[pinned by pin-it]" in first["reason"]
    )
    # a draft control is previewed in place of the stored one, without saving it
    draft = {"id": "pin-it", "name": "Seasonal", "action": "hide", "target": {"skus": [target]}}
    moved = client.post(
        "/v1/rules/preview", headers=AUTH, json={**req, "draft_control": draft}
    ).json()
    assert target not in [i["sku"] for i in moved["items"]] and "hide-cat" in moved["note"]
    assert client.get("/v1/controls/pin-it", headers=AUTH).json()["control"]["position"] == 1


def test_replay_a_draft_control_over_last_weeks_baskets(client, fitted_bundle) -> None:
    from datetime import UTC, datetime, timedelta

    from feature_store.event_log import Event

    _, world = fitted_bundle
    buys = world.interactions.purchases()
    orders = list(dict.fromkeys(buys["order_id"]))[-40:]
    now = datetime.now(UTC) - timedelta(days=2)
    events = [
        Event(
            event_id=f"rp-{i}",
            type="purchase",
            sku=r.sku,
            ts=now,
            order_id=f"rp-{r.order_id}",
            quantity=int(r.quantity),
        )
        for i, r in enumerate(buys[buys["order_id"].isin(orders)].itertuples(index=False))
    ]
    client.app.state.event_log.append(events)
    req = {"basket": [{"sku": _paint_sku(world), "quantity": 1}], "page": "cart", "k": 10}
    top_cat = client.post("/v1/recommendations", json=req).json()["items"][0]["category"]
    ctl = {
        "id": "bury-top",
        "name": "b",
        "action": "bury",
        "target": {"categories": [top_cat]},
        "shift": 3,
    }
    r = client.post(
        "/v1/rules/replay", headers=AUTH, json={"days": 7, "page": "cart", "draft_control": ctl}
    )
    assert r.status_code == 200, r.text
    body = r.json()["control"]
    assert r.json()["baskets"] == len(orders) and body["answers"] == len(orders)
    assert 0 < body["acted"] <= len(orders) and body["acted_share"] == round(
        body["acted"] / len(orders), 4
    )
    assert body["most_affected"] and {p["category"] for p in body["most_affected"]} == {top_cat}
    assert (
        client.get("/v1/controls/bury-top", headers=AUTH).status_code == 404
    )  # a replay stores nothing
