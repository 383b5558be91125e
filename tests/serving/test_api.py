"""The API through the real app with a real (small) model bundle."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.schemas import EXAMPLE_PAINT, EXAMPLE_TILE, EXAMPLE_WALLPAPER

ADMIN = {"Authorization": "Bearer test-admin-key"}


@pytest.fixture
def client(settings_for, bundle_dir):  # noqa: ANN001, ANN201
    with TestClient(create_app(settings_for(model_uri=str(bundle_dir)))) as c:
        yield c


def _rec(client, **body):  # noqa: ANN001, ANN003, ANN202
    r = client.post("/v1/recommendations", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_cart_answer_has_the_documented_shape(client) -> None:  # noqa: ANN001
    basket = [{"sku": EXAMPLE_TILE, "quantity": 1}, {"sku": EXAMPLE_WALLPAPER, "quantity": 1}]
    body = _rec(client, basket=basket, page="cart", k=5)
    assert len(body["items"]) == 5
    assert body["degraded"] is False and body["unknown_skus"] == []
    assert body["model_version"] and body["request_id"]
    for item in body["items"]:
        assert item["sku"] not in (EXAMPLE_TILE, EXAMPLE_WALLPAPER)
        assert item["title"] and item["price"] is not None and item["sources"] and item["reason"]
    assert set(body["style"]) >= {"top", "confidence", "distribution", "evidence"}
    assert 0.0 <= body["style"]["confidence"] <= 1.0
    assert body["timings_ms"]["total"] > 0  # per-stage timings of the pipeline


def test_checkout_fills_accessories_for_paint(client) -> None:  # noqa: ANN001
    """The default merchandiser rules (loaded into the empty rule store on first start) fill
    the accessory slots at checkout: paint => gloves, tape, waste bags..."""
    basket = [{"sku": EXAMPLE_PAINT, "quantity": 2}]
    body = _rec(client, basket=basket, page="checkout", k=5)
    assert body["accessories"]
    for a in body["accessories"]:
        assert a["rule_id"] and "wall paint" in a["reason"] and a["title"]
    assert {a["category"] for a in body["accessories"]} & {
        "protective-gloves",
        "masking-tape",
        "construction-waste-bags",
        "drop-cloth",
        "paint-roller",
    }
    assert _rec(client, basket=basket, page="product", k=5)["accessories"] == []


def test_unknown_skus_are_reported_not_fatal(client) -> None:  # noqa: ANN001
    body = _rec(client, basket=[{"sku": EXAMPLE_TILE}, {"sku": "NOPE-1"}], k=3)
    assert body["unknown_skus"] == ["NOPE-1"] and len(body["items"]) == 3
    only_unknown = _rec(client, basket=[{"sku": "NOPE-1"}], k=3)
    assert only_unknown["unknown_skus"] == ["NOPE-1"] and len(only_unknown["items"]) == 3


def test_empty_basket_gives_popular_items(client) -> None:  # noqa: ANN001
    body = _rec(client, basket=[], k=4)
    assert len(body["items"]) == 4 and body["degraded"] is False


def test_filters_and_exclusions_are_honoured(client) -> None:  # noqa: ANN001
    basket = [{"sku": EXAMPLE_TILE}]
    first = _rec(client, basket=basket, k=5)
    excluded = [i["sku"] for i in first["items"][:2]]
    body = _rec(client, basket=basket, k=5, exclude_skus=excluded)
    assert not set(excluded) & {i["sku"] for i in body["items"]}
    cheap = _rec(client, basket=basket, k=5, filters={"max_price": 20.0})
    assert cheap["items"] and all(i["price"] <= 20.0 for i in cheap["items"])
    grout = _rec(client, basket=basket, k=5, filters={"categories": ["grout", "tile-adhesive"]})
    # on the cart page the tile rule's accessories take grout and adhesive, and the ranked items
    # do not repeat an accessory category: the filter holds for both sections together
    shown = grout["items"] + grout["accessories"]
    assert shown and {i["category"] for i in shown} <= {"grout", "tile-adhesive"}


def test_tiny_latency_budget_degrades_instead_of_failing(settings_for, bundle_dir) -> None:  # noqa: ANN001
    app = create_app(settings_for(model_uri=str(bundle_dir), latency_budget_ms=0.001))
    with TestClient(app) as client:
        body = _rec(client, basket=[{"sku": EXAMPLE_TILE}], k=5)
        assert body["degraded"] is True and "latency budget" in body["degraded_reason"]
        assert len(body["items"]) == 5
        assert "recsys_degraded_answers_total" in client.get("/metrics").text


def test_product_page(client) -> None:  # noqa: ANN001
    r = client.get(f"/v1/products/{EXAMPLE_TILE}/recommendations?k=4")
    assert r.status_code == 200
    skus = [i["sku"] for i in r.json()["items"]]
    assert 0 < len(skus) <= 4 and EXAMPLE_TILE not in skus
    r = client.get("/v1/products/NOPE-1/recommendations")
    assert r.status_code == 404 and "unknown sku 'NOPE-1'" in r.json()["detail"]
    r = client.get(f"/v1/products/{EXAMPLE_TILE}/recommendations?k=100000")
    assert r.status_code == 422 and "RECSYS_MAX_K" in r.json()["detail"]


def test_style_inference(client) -> None:  # noqa: ANN001
    r = client.post("/v1/styles/infer", json={"basket": [{"sku": EXAMPLE_TILE}, {"sku": "NOPE"}]})
    assert r.status_code == 200
    body = r.json()
    assert body["unknown_skus"] == ["NOPE"] and body["model_version"]
    assert (
        abs(sum(body["style"]["distribution"].values()) - 1.0) < 1e-6
        or body["style"]["top"] is None
    )


def test_catalog_lookup(client) -> None:  # noqa: ANN001
    body = client.get("/v1/products", params={"q": "grey porcelain", "limit": 3}).json()
    assert 0 < len(body["items"]) <= 3 <= body["total"]
    assert all("grey porcelain" in i["title"].lower() for i in body["items"])
    body = client.get(
        "/v1/products", params={"q": "wall paint", "limit": 5}
    ).json()  # the OpenAPI example
    assert [i["category"] for i in body["items"]] == ["wall-paint"] * 5
    body = client.get("/v1/products", params={"category": "grout", "limit": 200}).json()
    assert body["total"] == len(body["items"]) > 0
    assert {i["category"] for i in body["items"]} == {"grout"}
    body = client.get("/v1/products", params={"style": "loft", "limit": 5}).json()
    assert all("loft" in i["styles"] for i in body["items"])
    r = client.get("/v1/products", params={"style": "gothic"})
    assert r.status_code == 422 and "unknown style 'gothic'" in r.json()["detail"]
    assert client.get("/v1/products", params={"limit": 0}).status_code == 422


def test_events_feed_the_shoppers_online_state(client) -> None:  # noqa: ANN001
    events = [
        {
            "event_id": "ev-1",
            "type": "view",
            "sku": EXAMPLE_TILE,
            "user_id": "u-7",
            "ts": "2026-03-01T10:00:00Z",
        },
        {
            "event_id": "ev-2",
            "type": "add_to_cart",
            "sku": EXAMPLE_WALLPAPER,
            "user_id": "u-7",
            "ts": "2026-03-01T10:01:00Z",
        },
        {
            "event_id": "ev-3",
            "type": "view",
            "sku": "NOT-IN-CATALOG",
            "session_id": "s-1",
            "ts": "2026-03-01T10:02:00Z",
        },
    ]
    r = client.post("/v1/events", json={"events": events})
    assert r.status_code == 200
    assert r.json() == {
        "accepted": 3,
        "duplicates": 0,
        "unknown_skus": ["NOT-IN-CATALOG"],
        "rejected": [],
        "conflicting_duplicates": [],
    }
    again = client.post("/v1/events", json={"events": events}).json()
    assert again["accepted"] == 0 and again["duplicates"] == 3
    ctx = client.app.state.online_state.user_context("u-7", None)
    assert ctx.recent_skus == (EXAMPLE_WALLPAPER, EXAMPLE_TILE)  # counted once, newest first
    body = _rec(client, basket=[], user_id="u-7", k=5)
    assert len(body["items"]) == 5


def test_admin_model_and_reload(client, bundle_dir) -> None:  # noqa: ANN001
    info = client.get("/admin/model", headers=ADMIN).json()
    assert info["loaded"] is True and info["version"] and info["catalog_size"] == 4000
    assert info["source_uri"] == str(bundle_dir) and info["loaded_at"]
    r = client.post("/admin/reload", headers=ADMIN).json()
    assert r["outcome"] == "unchanged"
    r = client.post("/admin/reload?force=true", headers=ADMIN).json()
    assert r["outcome"] == "swapped"
    metrics = client.get("/metrics").text
    assert f'recsys_model_info{{run_id="",version="{info["version"]}"}} 1.0' in metrics
    assert 'recsys_model_reloads_total{outcome="swapped"} 2.0' in metrics
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["problems"] == []


def test_openapi_examples_work_as_is(client) -> None:  # noqa: ANN001
    spec = client.app.openapi()
    tried = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not content or not path.startswith("/v1/") or path.startswith("/v1/rules"):
                continue
            schema = content["schema"]
            if "$ref" in schema:
                schema = spec["components"]["schemas"][schema["$ref"].split("/")[-1]]
            for example in schema.get("examples", []):
                r = client.request(method.upper(), path, json=example)
                assert r.status_code == 200, (path, example, r.text)
                tried += 1
    assert tried >= 4
    r = client.get(f"/v1/products/{EXAMPLE_TILE}/recommendations")
    assert r.status_code == 200
