"""Experiments through the real app and a real bundle: admin API, routing by variant with
knobs applied as views, the memory budget, the report."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from recsys.experiment import Experiment, assign, with_knobs
from serving.app import create_app
from serving.schemas import EXAMPLE_PAINT, EXAMPLE_TILE, EXAMPLE_WALLPAPER

ADMIN = {"Authorization": "Bearer test-admin-key", "X-Author": "ana"}
EXP = {
    "name": "full-vs-copurchase",
    "placements": ["cart", "checkout"],
    "variants": [
        {"name": "full", "share": 0.5},
        {
            "name": "copurchase",
            "share": 0.5,
            "knobs": {"ranker": False, "style_slots": 0, "generators": ["co_purchase"]},
            "rules": {"mode": "none"},
        },
    ],
}
CART = [{"sku": EXAMPLE_TILE}, {"sku": EXAMPLE_WALLPAPER}]


@pytest.fixture
def client(settings_for, bundle_dir):  # noqa: ANN001, ANN201
    with TestClient(create_app(settings_for(model_uri=str(bundle_dir)))) as c:
        yield c


def test_knobs_are_a_view_that_leaves_the_model_alone(bundle_dir) -> None:  # noqa: ANN001
    from feature_store import load_recommender
    from recsys.recommendation import BasketLine, RecommendationRequest

    rec = load_recommender(bundle_dir)
    exp = Experiment.model_validate(EXP)
    view = with_knobs(rec, exp.variant("copurchase").knobs)
    req = RecommendationRequest(
        basket=(BasketLine(EXAMPLE_TILE), BasketLine(EXAMPLE_WALLPAPER)), k=8
    )
    before = rec.recommend(req)
    viewed = view.recommend(req)
    # only the kept generator proposes (plus the documented popular fallback when it has nothing)
    assert {s for i in viewed.items for s in i.sources} <= {"co_purchase", "popular"}
    assert {s for i in before.items for s in i.sources} - {"co_purchase", "popular"}
    assert "ranker" not in {k for k, v in viewed.timings_ms.items() if v > 0}
    assert rec.recommend(req).items == before.items  # the original is untouched
    assert rec.config.ranker.enabled and len(rec.generators) > 1
    with pytest.raises(ValueError, match="not in this model"):
        with_knobs(rec, exp.variant("copurchase").knobs.model_copy(update={"generators": ["nope"]}))


def test_admin_api_lifecycle_routing_and_report(client) -> None:  # noqa: ANN001
    assert client.get("/v1/experiments").status_code == 401
    r = client.post("/v1/experiments", json=EXP, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["status"] == "draft"
    bad = dict(EXP, name="bad", variants=[{"name": "a", "share": 0.7}, {"name": "b", "share": 0.7}])
    r = client.post("/v1/experiments", json=bad, headers=ADMIN)
    assert r.status_code == 422 and "add up to 1" in r.text
    r = client.post("/v1/experiments/full-vs-copurchase/start?base_version=1", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running"
    r = client.put("/v1/experiments/full-vs-copurchase?base_version=2", json=EXP, headers=ADMIN)
    assert r.status_code == 409 and "only drafts" in r.text

    exp = Experiment.model_validate(EXP)
    seen: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    ts = datetime.now(UTC).isoformat()
    for i in range(40):
        sid = f"shopper-{i}"
        body = client.post(
            "/v1/recommendations",
            json={
                "basket": CART if i % 2 else [{"sku": EXAMPLE_PAINT}],
                "page": "cart" if i % 2 else "checkout",
                "k": 6,
                "session_id": sid,
            },
        ).json()
        assert body["experiment"] == "full-vs-copurchase"
        assert body["variant"] == assign(exp, sid).name  # the documented hash, in the server
        seen[body["variant"]] += 1
        shown[body["variant"]] += len(body["items"]) + len(body["accessories"])
        if body["variant"] == "copurchase":
            assert {s for it in body["items"] for s in it["sources"]} <= {"co_purchase", "popular"}
            assert body["accessories"] == []  # rules: none
        first = body["items"][0]
        client.post(
            "/v1/events",
            json={
                "events": [
                    {
                        "event_id": f"c-{i}",
                        "type": "view",
                        "sku": first["sku"],
                        "session_id": sid,
                        "ts": ts,
                        "recommendation_id": body["recommendation_id"],
                        "position": 1,
                    },
                    {
                        "event_id": f"p-{i}",
                        "type": "purchase",
                        "sku": first["sku"],
                        "session_id": sid,
                        "ts": ts,
                        "recommendation_id": body["recommendation_id"],
                        "position": 1,
                        "price": 10.0,
                    },
                ]
            },
        ).raise_for_status()
    assert set(seen) == {"full", "copurchase"}
    # no session, or a placement without experiment: the champion, not counted
    plain = client.post("/v1/recommendations", json={"basket": CART, "page": "cart"}).json()
    assert plain["experiment"] is None and plain["variant"] == "default"

    rep = client.get("/v1/experiments/full-vs-copurchase/report", headers=ADMIN).json()
    units = {v["variant"]: v["units"] for v in rep["variants"]}
    assert units == dict(seen)
    for v in rep["variants"]:
        # every answer's first item was clicked: one click per answer, over the items shown
        assert v["metrics"]["ctr"] == pytest.approx(seen[v["variant"]] / shown[v["variant"]])
        assert v["metrics"]["revenue_per_session"] == pytest.approx(10.0)
    assert "revenue_per_session" in rep["variants"][1]["vs_control"]
    assert rep["srm"]["flagged"] is False

    r = client.post("/v1/experiments/full-vs-copurchase/stop", headers=ADMIN)
    assert r.json()["status"] == "stopped"
    after = client.post(
        "/v1/recommendations", json={"basket": CART, "session_id": "shopper-1"}
    ).json()
    assert after["experiment"] is None
    hist = client.get("/v1/experiments/full-vs-copurchase/history", headers=ADMIN).json()
    assert [h["action"] for h in hist] == ["stop", "start", "create"]
    assert all(h["author"] == "ana" for h in hist)
    assert client.get("/v1/experiments/nope", headers=ADMIN).status_code == 404


def test_start_over_the_memory_budget_is_refused(settings_for, bundle_dir, bundle_dir_b) -> None:  # noqa: ANN001
    settings = settings_for(model_uri=str(bundle_dir), experiment_memory_budget_mb=0.5)
    doc = dict(
        EXP,
        variants=[
            {"name": "champion", "share": 0.5},
            {"name": "challenger", "share": 0.5, "model": str(bundle_dir_b)},
        ],
    )
    with TestClient(create_app(settings)) as c:
        c.post("/v1/experiments", json=doc, headers=ADMIN).raise_for_status()
        r = c.post("/v1/experiments/full-vs-copurchase/start", headers=ADMIN)
        assert r.status_code == 409
        assert "over the memory budget of 0.5 MB" in r.json()["detail"]
        assert "RECSYS_EXPERIMENT_MEMORY_BUDGET_MB" in r.json()["detail"]
        assert (
            c.get("/v1/experiments/full-vs-copurchase", headers=ADMIN).json()["status"] == "draft"
        )


def test_a_challenger_model_serves_its_variant(settings_for, bundle_dir, bundle_dir_b) -> None:  # noqa: ANN001
    doc = dict(
        EXP,
        variants=[
            {"name": "champion", "share": 0.5},
            {"name": "challenger", "share": 0.5, "model": str(bundle_dir_b)},
        ],
    )
    with TestClient(create_app(settings_for(model_uri=str(bundle_dir)))) as c:
        c.post("/v1/experiments", json=doc, headers=ADMIN).raise_for_status()
        c.post("/v1/experiments/full-vs-copurchase/start", headers=ADMIN).raise_for_status()
        versions: dict[str, set[str]] = {}
        for i in range(20):
            body = c.post(
                "/v1/recommendations", json={"basket": CART, "session_id": f"s{i}"}
            ).json()
            versions.setdefault(body["variant"], set()).add(body["model_version"])
    assert set(versions) == {"champion", "challenger"}
    assert len(versions["champion"]) == len(versions["challenger"]) == 1
    assert versions["champion"] != versions["challenger"]
