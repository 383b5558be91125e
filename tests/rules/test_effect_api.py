"""``/v1/rules/{id}/effect``, ``/v1/controls/{id}/effect`` and the lists' effect columns through
a real app, on hand-built impressions and events with a known answer; bad windows and unknown
ids in the service's one error shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from feature_store.attribution import EventContext, EventContextLog
from feature_store.event_log import Event, EventLog
from feature_store.impression_log import Impression, ImpressionLog, ShownItem
from recsys.settings import Settings
from tests.rules.apps import KEY, rules_app
from tests.rules.conftest import make_catalog

AUTH = {"Authorization": f"Bearer {KEY}", "X-Author": "alice"}
NOW = datetime.now(UTC)
PAINT = "paint-essentials"


def _imp(rid: str, session: str, hours_ago: float, items) -> Impression:  # noqa: ANN001
    return Impression(
        recommendation_id=rid,
        ts=NOW - timedelta(hours=hours_ago),
        placement="checkout",
        user_id=None,
        session_id=session,
        experiment=None,
        variant="default",
        model_version=None,
        rules_version="1",
        items=tuple(items),
        controls=tuple(sorted({c for i in items for c in i.control_ids})),
    )


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, merchandiser_key=KEY, rules_poll_seconds=0.2)
    url = settings.resolved_database_url
    events = EventLog(url)
    ImpressionLog(url).append(
        [
            _imp(
                "r1",
                "s1",
                2,
                [
                    ShownItem("GR1", "items", 1, control_ids=("bury-grout",)),
                    ShownItem("G1", "accessories", 1, rule_ids=(PAINT,)),
                    ShownItem("M1", "accessories", 2, rule_ids=(PAINT,)),
                ],
            ),
            _imp("r2", "s2", 1, [ShownItem("G1", "accessories", 1, rule_ids=(PAINT,))]),
        ]
    )
    at = NOW - timedelta(minutes=30)
    events.append(
        [
            Event("buy", "purchase", "G1", at, 3, session_id="s1"),  # names r1: 3 x 4.00
            Event("cart", "add_to_cart", "G1", at, 1, session_id="s2"),  # s2's latest G1: r2
        ]
    )
    EventContextLog(events.engine).append([EventContext("buy", "r1", 1, None)])
    with TestClient(rules_app(settings, make_catalog(), event_log=events)) as c:
        bury = {
            "id": "bury-grout",
            "name": "Grout range ends",
            "action": "bury",
            "target": {"categories": ["grout"]},
            "multiplier": 0.5,
        }
        assert c.post("/v1/controls", json=bury, headers=AUTH).status_code == 201
        yield c


def test_a_rules_effect_has_the_known_answer(client) -> None:
    body = client.get(f"/v1/rules/{PAINT}/effect", params={"days": 7}, headers=AUTH).json()
    assert body["kind"] == "rule" and body["id"] == PAINT
    # three lines shown in two answers; r1/G1 bought (3 x the catalog's 4.00), r2/G1 carted
    assert (body["impressions"], body["baskets"], body["added"], body["bought"]) == (3, 2, 1, 1)
    assert body["attached"] == 2 and body["attach_rate"] == pytest.approx(2 / 3)
    assert body["revenue"] == pytest.approx(12.0)
    assert datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"]) == timedelta(
        days=7
    )
    never = client.get("/v1/rules/tile-essentials/effect", headers=AUTH).json()
    assert (never["impressions"], never["attach_rate"], never["revenue"]) == (0, 0.0, 0.0)
    old = client.get(
        f"/v1/rules/{PAINT}/effect",
        params={"from": "2026-01-01", "to": "2026-01-31T00:00:00Z"},
        headers=AUTH,
    ).json()
    assert old["impressions"] == 0 and old["from"].startswith("2026-01-01T00:00:00")


def test_a_controls_effect_and_the_lists_effect_columns(client) -> None:
    body = client.get("/v1/controls/bury-grout/effect", headers=AUTH).json()
    assert (body["kind"], body["impressions"], body["baskets"], body["attached"]) == (
        "control",
        1,
        1,
        0,
    )
    rules = client.get("/v1/rules", params={"effect": "true", "days": 3}, headers=AUTH).json()
    by_id = {r["id"]: r["effect"] for r in rules["rules"]}
    assert by_id[PAINT]["impressions"] == 3 and by_id[PAINT]["revenue"] == pytest.approx(12.0)
    assert by_id["tile-essentials"]["impressions"] == 0
    plain = client.get("/v1/rules", headers=AUTH).json()
    assert all(r["effect"] is None for r in plain["rules"])
    controls = client.get("/v1/controls", params={"effect": "true"}, headers=AUTH).json()
    assert controls["controls"][0]["effect"]["impressions"] == 1


def test_a_deleted_rule_keeps_its_effect(client) -> None:
    version = client.get(f"/v1/rules/{PAINT}", headers=AUTH).json()["version"]
    assert (
        client.delete(f"/v1/rules/{PAINT}", params={"version": version}, headers=AUTH).status_code
        == 200
    )
    assert client.get(f"/v1/rules/{PAINT}/effect", headers=AUTH).json()["impressions"] == 3


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"days": 7, "from": "2026-01-01"}, "days", "either days or from/to"),
        ({"days": 0}, "days", "between 1 and 366"),
        ({"days": 5000}, "days", "RECSYS_EFFECT_MAX_DAYS"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to", "must be after from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from", "narrow it"),
        ({"from": "last tuesday"}, "from", "datetime"),
    ],
)
def test_bad_windows_get_422_naming_the_parameter(client, params, field, words) -> None:  # noqa: ANN001
    for path in (f"/v1/rules/{PAINT}/effect", "/v1/controls/bury-grout/effect", "/v1/rules"):
        r = client.get(path, params=params, headers=AUTH)
        assert r.status_code == 422, (path, r.text)
        body = r.json()
        assert [e["field"] for e in body["errors"]] == [field]
        assert words in body["detail"]


def test_unknown_ids_get_404_saying_where_the_ids_are(client) -> None:
    r = client.get("/v1/rules/no-such-rule/effect", headers=AUTH)
    assert r.status_code == 404
    assert r.json() == {"detail": "no rule 'no-such-rule': GET /v1/rules lists the ids"}
    r = client.get("/v1/controls/nope/effect", headers=AUTH)
    assert r.status_code == 404 and "GET /v1/controls" in r.json()["detail"]
    assert client.get(f"/v1/rules/{PAINT}/effect").status_code == 401  # merchandisers only
