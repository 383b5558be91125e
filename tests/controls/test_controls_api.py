"""The answer controls API through a real app (TestClient), SQLite store in a temp dir: the
rules' versioning machinery (versions, 409 on stale writes, history with old -> new, rollback,
YAML import/export) serves controls too."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from recsys.settings import Settings
from tests.rules.apps import KEY, rules_app
from tests.rules.conftest import make_catalog

AUTH = {"Authorization": f"Bearer {KEY}", "X-Author": "alice"}
CATALOG = make_catalog()


def control(cid: str = "bury-grout", **kw) -> dict:
    d = {
        "id": cid,
        "name": "Grout range ends",
        "action": "bury",
        "target": {"categories": ["grout"]},
        "multiplier": 0.5,
    }
    d.update(kw)
    return d


@pytest.fixture
def client(tmp_path):
    settings = Settings(data_dir=tmp_path, merchandiser_key=KEY, rules_poll_seconds=0.2)
    with TestClient(rules_app(settings, CATALOG)) as c:
        yield c


def test_create_edit_conflict_history_rollback(client) -> None:
    r = client.post("/v1/controls", json=control(), headers=AUTH)
    assert (
        r.status_code == 201
        and r.headers["etag"] == '"1"'
        and r.json()["summary"] == "bury grout x0.5"
    )
    assert client.post("/v1/controls", json=control(), headers=AUTH).status_code == 409
    ok = client.put(
        "/v1/controls/bury-grout",
        json=control(multiplier=0.2, shift=3),
        headers={**AUTH, "If-Match": '"1"'},
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.put(
        "/v1/controls/bury-grout", json=control(multiplier=0.9), headers={**AUTH, "If-Match": '"1"'}
    )
    assert stale.status_code == 409 and stale.json()["current"]["control"]["multiplier"] == 0.2
    assert "control 'bury-grout'" in stale.json()["detail"]
    hist = client.get("/v1/controls/bury-grout/history", headers=AUTH).json()
    assert [v["action"] for v in hist["versions"]] == ["update", "create"]
    diff = {d["field"]: (d["old"], d["new"]) for d in hist["versions"][0]["diff"]}
    assert diff == {"multiplier": (0.5, 0.2), "shift": (None, 3)}
    back = client.post(
        "/v1/controls/bury-grout/rollback", json={"to_version": 1, "version": 2}, headers=AUTH
    )
    assert (
        back.status_code == 200
        and back.json()["control"]["multiplier"] == 0.5
        and back.json()["version"] == 3
    )
    assert (
        client.post("/v1/controls/bury-grout/disable", headers=AUTH).json()["control"]["enabled"]
        is False
    )
    assert (
        client.delete("/v1/controls/bury-grout", params={"version": 4}, headers=AUTH).json()[
            "version"
        ]
        == 5
    )
    assert client.get("/v1/controls/bury-grout", headers=AUTH).status_code == 404
    assert (
        client.get("/v1/controls/nope/history", headers=AUTH).json()["detail"]
        == "no control 'nope'"
    )
    # the rules' own history shows old -> new too
    client.post("/v1/rules/paint-primer/disable", headers=AUTH)
    rh = client.get("/v1/rules/paint-primer/history", headers=AUTH).json()["versions"][0]
    assert rh["diff"] == [{"field": "enabled", "old": True, "new": False}]


def test_validation_names_fields_and_catalog_names(client) -> None:
    r = client.post(
        "/v1/controls", json=control(target={"categories": ["grot"]}, multiplier=2), headers=AUTH
    )
    assert r.status_code == 422
    r = client.post("/v1/controls", json=control(target={"categories": ["grot"]}), headers=AUTH)
    assert r.json()["errors"] == [
        {
            "field": "target.categories[0]",
            "message": "unknown category 'grot'; did you mean 'grout'?",
            "type": "value_error",
            "path": "target.categories[0]",
        }
    ]
    pin = {"id": "pin-x", "name": "x", "action": "pin", "target": {"skus": ["NOPE"]}, "position": 1}
    assert (
        client.post("/v1/controls", json=pin, headers=AUTH).json()["errors"][0]["path"]
        == "target.skus[0]"
    )
    assert client.get("/v1/controls/pin-x", headers=AUTH).status_code == 404


def test_yaml_import_export_round_trip(client) -> None:
    client.post("/v1/controls", json=control(), headers=AUTH)
    text = client.get("/v1/controls/export", headers=AUTH).text
    assert text.startswith("version: 1\ncontrols:")
    dry = client.post(
        "/v1/controls/import", params={"dry_run": True}, content=text, headers=AUTH
    ).json()
    assert dry["unchanged"] == ["bury-grout"] and dry["created"] == []
    bad = text.replace("action: bury", "action: shove")
    r = client.post("/v1/controls/import", content=bad, headers=AUTH)
    assert r.status_code == 422 and r.json()["errors"][0]["path"].startswith(
        "controls[0] (bury-grout).action"
    )
    new = text + "- {id: hide-c1, name: h, action: hide, target: {skus: [C1]}}\n"
    res = client.post(
        "/v1/controls/import", params={"mode": "replace"}, content=new, headers=AUTH
    ).json()
    assert res["created"] == ["hide-c1"] and res["unchanged"] == ["bury-grout"]
    assert client.get("/v1/controls", headers=AUTH).json()["total"] == 2
    assert len(client.app.state.rules_runtime.controls()) == 2  # compiled at once


def test_controls_need_the_key(client) -> None:
    assert client.get("/v1/controls").status_code == 401
    assert (
        client.post(
            "/v1/controls", json=control(), headers={"Authorization": "Bearer nope"}
        ).status_code
        == 403
    )
