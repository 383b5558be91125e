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
    settings = Settings(data_dir=tmp_path, model_uri=str(path), merchandiser_key=KEY,
                        reload_poll_seconds=0, rules_poll_seconds=0.2)
    with TestClient(create_app(settings)) as c:
        yield c


def _paint_sku(world) -> str:
    frame = world.catalog.frame
    return str(frame.loc[(frame["category"] == "wall-paint") & frame["in_stock"], "sku"].iloc[0])


def test_preview_uses_the_served_recommender(client, fitted_bundle) -> None:
    _, world = fitted_bundle
    runtime = client.app.state.rules_runtime
    assert runtime.engine() is not None and len(runtime.engine()) >= 5
    r = client.post("/v1/rules/preview", headers=AUTH,
                    json={"basket": [{"sku": _paint_sku(world), "quantity": 1}], "page": "checkout"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "recommender" and body["items"]
    assert "paint-essentials" in [f["rule_id"] for f in body["fired"]]
    slots = [a["category"] for a in body["accessories"] if a["rule_id"] == "paint-essentials"]
    assert set(slots) <= {"paint-roller", "masking-tape", "protective-gloves", "drop-cloth",
                          "construction-waste-bags"}
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
    assert client.post("/v1/rules/paint-essentials/disable", params={"version": version},
                       headers=AUTH).status_code == 200
    assert "paint-essentials" not in rules_in_answer()
