"""``recsys events export`` and behaviour when a backing store is down."""

from __future__ import annotations

from fastapi.testclient import TestClient

from recsys.cli import main
from recsys.data.interactions import load_interactions
from serving.app import create_app
from serving.schemas import EXAMPLE_TILE


def test_events_export_writes_the_interactions_contract(
    settings_for, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    events = [
        {
            "event_id": f"x{i}",
            "type": t,
            "sku": EXAMPLE_TILE,
            "user_id": "u1",
            "order_id": o,
            "ts": f"2026-03-0{i + 1}T10:00:00Z",
        }
        for i, (t, o) in enumerate([("view", None), ("add_to_cart", None), ("purchase", "O-1")])
    ]
    with TestClient(create_app(settings_for())) as client:
        assert client.post("/v1/events", json={"events": events}).json()["accepted"] == 3
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    out = tmp_path / "export" / "events.parquet"
    assert main(["events", "export", "--out", str(out)]) == 0
    frame = load_interactions(out).frame
    assert list(frame["event"]) == ["view", "add_to_cart", "purchase"]
    assert list(frame["order_id"]) == ["u1", "u1", "O-1"]
    assert main(["events", "export", "--out", str(out), "--since", "2026-03-02T00:00:00Z"]) == 0
    assert len(load_interactions(out)) == 2
    assert main(["events", "export", "--out", str(out), "--since", "last tuesday"]) == 2


def test_redis_down_degrades_personalisation_not_the_api(settings_for, bundle_dir) -> None:  # noqa: ANN001
    settings = settings_for(model_uri=str(bundle_dir), redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/v1/recommendations", json={"basket": [{"sku": EXAMPLE_TILE}], "user_id": "u1", "k": 3}
        )
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        ev = {
            "event_id": "r1",
            "type": "view",
            "sku": EXAMPLE_TILE,
            "user_id": "u1",
            "ts": "2026-03-01T00:00:00Z",
        }
        assert client.post("/v1/events", json={"events": [ev]}).json()["accepted"] == 1
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["online_state_reachable"] is False
        assert "online state unreachable" in ready.json()["problems"][0]


def test_event_store_down_is_503_and_nothing_acknowledged(settings_for, tmp_path) -> None:  # noqa: ANN001
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with TestClient(
        create_app(settings_for(database_url=url)), raise_server_exceptions=False
    ) as client:
        ev = {"event_id": "p1", "type": "view", "sku": "A", "ts": "2026-03-01T00:00:00Z"}
        r = client.post("/v1/events", json={"events": [ev]})
        assert r.status_code == 503 and "nothing stored" in r.json()["detail"]
        assert r.headers["retry-after"] == "1"
        assert client.get("/readyz").json()["store_reachable"] is False
