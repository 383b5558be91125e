"""Bad input gets a 4xx that names the field and says what to fix (no model needed)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app


@pytest.fixture
def client(settings_for):  # noqa: ANN001, ANN201
    with TestClient(create_app(settings_for(max_basket_items=5, max_event_batch=3))) as c:
        yield c


def _problem(r) -> str:  # noqa: ANN001
    return r.json()["detail"]


def test_malformed_json(client) -> None:  # noqa: ANN001
    r = client.post(
        "/v1/recommendations", content=b'{"basket": [', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert "not valid JSON" in _problem(r)


def test_unknown_field_is_named(client) -> None:  # noqa: ANN001
    r = client.post("/v1/recommendations", json={"basket": [], "colour": "red"})
    assert r.status_code == 422 and "unknown field 'colour'" in _problem(r)
    r = client.post("/v1/recommendations", json={"basket": [{"sku": "A", "qty": 2}]})
    assert r.status_code == 422 and "unknown field 'basket[0].qty'" in _problem(r)
    assert r.json()["errors"][0]["field"] == "basket[0].qty"


@pytest.mark.parametrize("k", [0, -1, 101, 100000])
def test_k_out_of_range(client, k: int) -> None:  # noqa: ANN001
    r = client.post("/v1/recommendations", json={"basket": [], "k": k})
    assert r.status_code == 422
    assert _problem(r) == f"k: must be between 1 and 100 (RECSYS_MAX_K); got {k}"


def test_too_many_basket_items(client) -> None:  # noqa: ANN001
    basket = [{"sku": f"S{i}"} for i in range(6)]
    r = client.post("/v1/recommendations", json={"basket": basket})
    assert r.status_code == 422
    assert "basket: too many items: 6 > 5 (RECSYS_MAX_BASKET_ITEMS)" in _problem(r)
    r = client.post("/v1/styles/infer", json={"basket": basket})
    assert r.status_code == 422 and "too many items" in _problem(r)


def test_wrong_types_and_values(client) -> None:  # noqa: ANN001
    r = client.post("/v1/recommendations", json={"basket": [{"sku": "A", "quantity": 0}]})
    assert r.status_code == 422 and "basket[0].quantity" in _problem(r)
    r = client.post("/v1/recommendations", json={"basket": [], "page": "home"})
    assert r.status_code == 422 and "page" in _problem(r) and "checkout" in _problem(r)
    r = client.post("/v1/recommendations", json={"basket": [{"quantity": 1}]})
    assert r.status_code == 422 and _problem(r) == "basket[0].sku: required field is missing"
    r = client.post("/v1/recommendations", json=[1, 2])
    assert r.status_code == 422 and "expected a JSON object" in _problem(r)


def test_oversize_body_is_413(client) -> None:  # noqa: ANN001
    big = b'{"basket": [' + b'{"sku": "A"},' * 30000 + b'{"sku": "B"}]}'
    r = client.post(
        "/v1/recommendations", content=big, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "at most 262144 bytes" in _problem(r)

    def chunks():  # no Content-Length: counted while reading
        for _ in range(40):
            yield b" " * 10_000

    r = client.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_event_batch_limits_and_types(client) -> None:  # noqa: ANN001
    ev = {"event_id": "a", "type": "view", "sku": "A", "ts": "2026-03-01T00:00:00Z"}
    r = client.post("/v1/events", json={"events": [dict(ev, event_id=str(i)) for i in range(4)]})
    assert r.status_code == 422 and "too many events: 4 > 3" in _problem(r)
    r = client.post("/v1/events", json={"events": [dict(ev, type="click")]})
    assert r.status_code == 422 and "events[0].type" in _problem(r)
    r = client.post("/v1/events", json={"events": [dict(ev, ts="yesterday")]})
    assert r.status_code == 422 and "events[0].ts" in _problem(r)
    r = client.post("/v1/events", json={"events": []})
    assert r.status_code == 422 and "events" in _problem(r)


def test_request_id_is_echoed(client) -> None:  # noqa: ANN001
    r = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = client.post("/v1/recommendations", json={}, headers={"x-request-id": "bad id!"})
    assert r.json()["request_id"] == r.headers["x-request-id"] != "bad id!"


def test_full_worker_sheds_load_with_503_but_health_answers(settings_for) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for(), max_in_flight=0)) as client:
        r = client.post("/v1/recommendations", json={})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert "too many requests in flight" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200
        assert "recsys_shed_requests_total 1.0" in client.get("/metrics").text
