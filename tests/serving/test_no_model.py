"""With no model at all the API still answers (degraded, empty: without a catalogue events do
not feed popularity, see tests/reliability/test_poisoning.py), /readyz says why it is not
ready, and nothing returns a 5xx except the honest 503s."""

from __future__ import annotations

from fastapi.testclient import TestClient

from serving.app import create_app


def test_no_model_answers_degraded_and_not_ready(settings_for) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for())) as client:
        r = client.post("/v1/recommendations", json={"basket": [{"sku": "X-1"}], "k": 3})
        assert r.status_code == 200
        body = r.json()
        assert body["degraded"] is True and "no model" in body["degraded_reason"]
        assert body["items"] == [] and body["model_version"] is None
        assert body["style"]["top"] is None

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["model_loaded"] is False
        assert "no model loaded" in ready.json()["problems"][0]
        assert client.get("/healthz").json() == {"status": "ok"}

        events = [
            {"event_id": f"e{i}", "type": t, "sku": sku, "ts": "2026-03-01T10:00:00Z"}
            for i, (t, sku) in enumerate(
                [("purchase", "P-1"), ("view", "P-2"), ("add_to_cart", "P-1"), ("view", "X-1")]
            )
        ]
        assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 4
        body = client.post("/v1/recommendations", json={"basket": [{"sku": "X-1"}], "k": 3}).json()
        # stored for training, but no catalogue to check the SKUs: no popularity from them
        assert body["items"] == [] and body["degraded"] is True

        product = client.get("/v1/products/P-2/recommendations?k=5")
        assert product.status_code == 200 and product.json()["degraded"] is True
        assert "P-2" not in [i["sku"] for i in product.json()["items"]]
        style = client.post("/v1/styles/infer", json={"basket": [{"sku": "X-1"}]})
        assert style.status_code == 200 and style.json()["style"]["top"] is None
        catalog = client.get("/v1/products?q=tile")
        assert catalog.status_code == 503 and "no model loaded" in catalog.json()["detail"]

        metrics = client.get("/metrics").text
        assert 'recsys_fallbacks_total{kind="no_model"}' in metrics
        assert "recsys_events_accepted_total 4.0" in metrics
