"""The rules API through a real app (TestClient), SQLite store in a temp dir."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from recsys.recommendation import NO_STYLE
from recsys.rules.mining import mine_suggestions
from recsys.settings import Settings
from serving.rules.runtime import RulesRuntime
from serving.rules.store import RuleStore
from tests.rules.apps import KEY, rules_app
from tests.rules.conftest import make_catalog, make_history

AUTH = {"Authorization": f"Bearer {KEY}", "X-Author": "alice"}
CATALOG = make_catalog()
MINED = mine_suggestions(CATALOG, make_history())


def rule(rid: str = "lam-underlay", **kw) -> dict:
    d = {
        "id": rid,
        "name": "Laminate needs underlay",
        "trigger": {"categories": ["laminate"]},
        "suggest": {"categories": ["underlay"]},
    }
    d.update(kw)
    return d


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, merchandiser_key=KEY, rules_poll_seconds=0.2)


@pytest.fixture
def client(settings):
    with TestClient(rules_app(settings, CATALOG, MINED)) as c:
        yield c


def test_default_rules_are_loaded_on_first_start(client) -> None:
    body = client.get("/v1/rules", headers=AUTH).json()
    ids = {r["id"] for r in body["rules"]}
    assert {"paint-essentials", "tile-essentials", "laminate-underlay"} <= ids
    assert body["rules"][0]["rule"]["priority"] >= body["rules"][-1]["rule"]["priority"]
    # names the tiny catalog lacks are shown as problems, not hidden
    lam = next(r for r in body["rules"] if r["id"] == "laminate-underlay")
    assert any("laminate-flooring" in p for p in lam["problems"])


def test_search_and_filters(client) -> None:
    found = client.get("/v1/rules", params={"q": "wallpaper paste"}, headers=AUTH).json()
    assert [r["id"] for r in found["rules"]] == ["wallpaper-paste"]
    client.post("/v1/rules/paint-primer/disable", headers=AUTH)
    off = client.get("/v1/rules", params={"enabled": "false"}, headers=AUTH).json()
    assert [r["id"] for r in off["rules"]] == ["paint-primer"]
    tagged = client.get("/v1/rules", params={"tag": "flooring"}, headers=AUTH).json()
    assert [r["id"] for r in tagged["rules"]] == ["laminate-underlay"]


def test_create_edit_with_versions_and_conflict(client) -> None:
    r = client.post("/v1/rules", json=rule(), headers=AUTH)
    assert r.status_code == 201 and r.headers["etag"] == '"1"' and r.json()["updated_by"] == "alice"
    assert client.post("/v1/rules", json=rule(), headers=AUTH).status_code == 409
    # no version: refused, not applied
    assert (
        client.put("/v1/rules/lam-underlay", json=rule(priority=5), headers=AUTH).status_code == 428
    )
    ok = client.put(
        "/v1/rules/lam-underlay", json=rule(priority=5), headers={**AUTH, "If-Match": '"1"'}
    )
    assert ok.status_code == 200 and ok.json()["version"] == 2
    by_field = client.put(
        "/v1/rules/lam-underlay", json={**rule(priority=6), "version": 2}, headers=AUTH
    )
    assert by_field.json()["version"] == 3
    stale = client.put(
        "/v1/rules/lam-underlay",
        json=rule(priority=99),
        headers={**AUTH, "If-Match": '"2"', "X-Author": "bob"},
    )
    assert stale.status_code == 409
    assert (
        stale.json()["current"]["version"] == 3 and stale.json()["current"]["rule"]["priority"] == 6
    )
    assert "based on version 2" in stale.json()["detail"]
    assert client.get("/v1/rules/lam-underlay", headers=AUTH).json()["rule"]["priority"] == 6
    stale_delete = client.delete("/v1/rules/lam-underlay", headers={**AUTH, "If-Match": '"1"'})
    assert stale_delete.status_code == 409
    assert (
        client.put(
            "/v1/rules/lam-underlay", json=rule("other"), headers={**AUTH, "If-Match": '"3"'}
        ).status_code
        == 422
    )


def test_validation_errors_name_fields_and_catalog_names(client) -> None:
    bad = rule(
        trigger={"categories": ["laminat"]},
        suggest={"categories": ["underlay", "Skirting"], "max_items": 0},
    )
    r = client.post("/v1/rules", json=bad, headers=AUTH)
    assert r.status_code == 422
    paths = {e["path"] for e in r.json()["errors"]}
    assert {"suggest.categories[1]", "suggest.max_items"} <= paths
    r = client.post("/v1/rules", json=rule(trigger={"categories": ["laminat"]}), headers=AUTH)
    assert r.json()["errors"] == [
        {
            "field": "trigger.categories[0]",
            "message": "unknown category 'laminat'; did you mean 'laminate'?",
            "type": "value_error",
            "path": "trigger.categories[0]",
        }
    ]
    v = client.post(
        "/v1/rules/validate", json=rule(suggest={"categories": ["skirting-board"]}), headers=AUTH
    ).json()
    assert not v["valid"] and "did you mean 'skirting-boards'" in v["errors"][0]["message"]
    v = client.post("/v1/rules/validate", json=rule(), headers=AUTH).json()
    assert v == {"valid": True, "errors": [], "summary": "laminate => underlay", "problems": []}
    assert (
        client.get("/v1/rules/lam-underlay", headers=AUTH).status_code == 404
    )  # nothing was stored


def test_enable_disable_delete_history_rollback(client) -> None:
    client.post("/v1/rules", json=rule(), headers=AUTH)
    assert (
        client.post("/v1/rules/lam-underlay/disable", headers=AUTH).json()["rule"]["enabled"]
        is False
    )
    assert (
        client.post(
            "/v1/rules/lam-underlay/enable", params={"version": 1}, headers=AUTH
        ).status_code
        == 409
    )
    assert (
        client.post("/v1/rules/lam-underlay/enable", params={"version": 2}, headers=AUTH).json()[
            "version"
        ]
        == 3
    )
    d = client.delete("/v1/rules/lam-underlay", params={"version": 3}, headers=AUTH)
    assert d.json() == {"id": "lam-underlay", "version": 4, "deleted": True}
    assert client.get("/v1/rules/lam-underlay", headers=AUTH).status_code == 404
    hist = client.get("/v1/rules/lam-underlay/history", headers=AUTH).json()
    assert hist["current_version"] is None
    assert [v["action"] for v in hist["versions"]] == ["delete", "enable", "disable", "create"]
    back = client.post(
        "/v1/rules/lam-underlay/rollback", json={"to_version": 1, "version": 4}, headers=AUTH
    )
    assert (
        back.status_code == 200 and back.json()["version"] == 5 and back.json()["rule"]["enabled"]
    )
    assert (
        client.post(
            "/v1/rules/lam-underlay/rollback", json={"to_version": 4, "version": 5}, headers=AUTH
        ).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/rules/lam-underlay/rollback", json={"to_version": 1, "version": 4}, headers=AUTH
        ).status_code
        == 409
    )


def test_import_is_all_or_nothing_and_export_round_trips(client) -> None:
    runtime = client.app.state.rules_runtime
    before = runtime.store.change_counter()
    text = """version: 1
rules:
  - {id: good-rule, name: ok, trigger: {categories: [tile]}, suggest: {categories: [grout]}}
  - {id: bad-rule, name: bad, trigger: {categories: [tiles]}, suggest: {categories: [grout]}}
  - {id: worse, name: bad, trigger: {categories: [tile]}, suggest: {categories: []}}
"""
    r = client.post("/v1/rules/import", content=text, headers=AUTH)
    assert r.status_code == 422
    paths = [e["path"] for e in r.json()["errors"]]
    assert "rules[2] (worse).suggest" in paths
    assert "rules[1] (bad-rule).trigger.categories[0]" in paths
    assert runtime.store.change_counter() == before
    assert client.get("/v1/rules/good-rule", headers=AUTH).status_code == 404
    for garbage in ("rules: [", "\xff\xfe", "- 1\n- 2"):
        assert (
            client.post(
                "/v1/rules/import", content=garbage.encode("latin-1"), headers=AUTH
            ).status_code
            == 422
        )
    assert runtime.store.change_counter() == before

    exported = client.get("/v1/rules/export", headers=AUTH)
    assert exported.headers["content-type"].startswith("application/yaml")
    dry = client.post(
        "/v1/rules/import",
        params={"dry_run": True, "check_catalog": False},
        content=exported.text,
        headers=AUTH,
    ).json()
    assert dry["created"] == [] and dry["updated"] == [] and len(dry["unchanged"]) == 10
    new = (
        exported.text
        + "- {id: extra, name: e, trigger: {categories: [tile]}, suggest: {categories: [grout]}}\n"
    )
    res = client.post(
        "/v1/rules/import",
        params={"mode": "replace", "check_catalog": False},
        content=new.replace("priority: 100", "priority: 101", 1),
        headers=AUTH,
    ).json()
    assert res["created"] == ["extra"] and len(res["updated"]) == 1 and res["deleted"] == []


def test_preview_shows_fired_rules_and_checkout_slots(client) -> None:
    body = {"basket": [{"sku": "P1", "quantity": 3}, {"sku": "NOPE"}], "page": "checkout"}
    r = client.post("/v1/rules/preview", json=body, headers=AUTH).json()
    assert r["source"] == "rules-only" and r["unknown_skus"] == ["NOPE"]
    fired = [f["rule_id"] for f in r["fired"]]
    assert fired[:2] == ["paint-bulk-gloves", "paint-essentials"]
    slots = [(a["sku"], a["rule_id"]) for a in r["accessories"]]
    assert ("G1", "paint-bulk-gloves") in slots and ("M1", "paint-essentials") in slots
    assert len({s for s, _ in slots}) == len(slots)  # one SKU is shown once
    assert all(a["reason"] for a in r["accessories"])
    # a draft previewed alone, without saving it
    draft = {"basket": [{"sku": "L1"}], "draft": rule(), "only_draft": True}
    r = client.post("/v1/rules/preview", json=draft, headers=AUTH).json()
    assert [f["rule_id"] for f in r["fired"]] == ["lam-underlay"] and r["accessories"][0][
        "sku"
    ] == "U1"
    assert client.get("/v1/rules/lam-underlay", headers=AUTH).status_code == 404
    bad = client.post(
        "/v1/rules/preview",
        json={**draft, "draft": rule(suggest={"categories": ["x-y"]})},
        headers=AUTH,
    )
    assert (
        bad.status_code == 422 and bad.json()["errors"][0]["path"] == "draft.suggest.categories[0]"
    )
    assert client.post("/v1/rules/preview", json={"basket": []}, headers=AUTH).status_code == 422


def test_suggestions_and_accept(client) -> None:
    items = client.get("/v1/rules/suggestions", headers=AUTH).json()["suggestions"]
    target = next(
        s for s in items if s["anchor"] == "wall-paint" and s["accessory"] == "protective-gloves"
    )
    assert not target["accepted"] and "came back for it" in target["sentence"]
    assert set(target["covered_by"]) == {
        "paint-essentials",
        "paint-bulk-gloves",
    }  # the default rules
    # a covered suggestion is not silently duplicated: 409 says which rules cover it
    dup = client.post(f"/v1/rules/suggestions/{target['id']}/accept", headers=AUTH)
    assert dup.status_code == 409 and "paint-essentials" in dup.json()["detail"]
    assert client.get(f"/v1/rules/{target['id']}", headers=AUTH).status_code == 404
    r = client.post(
        f"/v1/rules/suggestions/{target['id']}/accept", params={"duplicate": True}, headers=AUTH
    )
    assert r.status_code == 201 and r.json()["rule"]["trigger"]["categories"] == ["wall-paint"]
    again = client.get("/v1/rules/suggestions", headers=AUTH).json()["suggestions"]
    assert next(s for s in again if s["id"] == target["id"])["accepted"]
    assert (
        client.post(
            f"/v1/rules/suggestions/{target['id']}/accept", params={"duplicate": True}, headers=AUTH
        ).status_code
        == 409
    )
    assert client.post("/v1/rules/suggestions/nope/accept", headers=AUTH).status_code == 404


def test_suggestions_paging_filters_and_sorting(client) -> None:
    def get(**params):
        r = client.get("/v1/rules/suggestions", params=params, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()

    everything = get()
    ids = [s["id"] for s in everything["suggestions"]]
    assert everything["total"] == len(ids) == len(MINED) >= 4
    assert [
        s["id"] for s in get(limit=2)["suggestions"] + get(limit=2, offset=2)["suggestions"]
    ] == ids[:4]
    assert get(limit=2, offset=2)["total"] == len(ids)  # the total counts every page
    uncovered = get(uncovered=True)
    expected = [s["id"] for s in everything["suggestions"] if not s["covered_by"]]
    assert [s["id"] for s in uncovered["suggestions"]] == expected and uncovered["total"] == len(
        expected
    )
    assert "mined-tile-grout" in expected and "mined-wall-paint-protective-gloves" not in expected
    grout = get(category="grout")["suggestions"]
    assert grout and all("grout" in (s["anchor"], s["accessory"]) for s in grout)
    lifts = [s["lift"] for s in get(sort="lift")["suggestions"]]
    assert lifts == sorted(lifts, reverse=True) and lifts[0] > lifts[-1]
    assert (
        all(s["lift"] >= 3 for s in get(min_lift=3)["suggestions"])
        and get(min_lift=3)["total"] == 2
    )
    assert all(s["forgotten_rate"] >= 0.4 for s in get(min_forgotten=0.4)["suggestions"])
    assert all(s["anchor_orders"] >= 100 for s in get(min_support=100)["suggestions"])
    bad = client.get("/v1/rules/suggestions", params={"sort": "random"}, headers=AUTH)
    assert bad.status_code == 422 and "sort" in str(bad.json()["detail"])


def test_accepting_into_an_existing_rule_instead_of_a_duplicate(client) -> None:
    client.post(
        "/v1/rules",
        json=rule(
            "tile-adhesive",
            trigger={"categories": ["tile"]},
            suggest={"categories": ["tile-adhesive"]},
        ),
        headers=AUTH,
    )
    sg = next(
        s
        for s in client.get("/v1/rules/suggestions", headers=AUTH).json()["suggestions"]
        if s["id"] == "mined-tile-grout"
    )
    assert sg["extends"] == ["tile-adhesive"] and sg["covered_by"] == []
    r = client.post(
        "/v1/rules/suggestions/mined-tile-grout/accept",
        params={"into": "tile-adhesive", "version": 1},
        headers=AUTH,
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["rule"]["suggest"]["categories"] == ["tile-adhesive", "grout"]
    assert (
        client.get("/v1/rules/mined-tile-grout", headers=AUTH).status_code == 404
    )  # no duplicate rule
    stale = client.post(
        "/v1/rules/suggestions/mined-tile-grout/accept",
        params={"into": "tile-adhesive", "version": 1},
        headers=AUTH,
    )
    assert stale.status_code == 409
    sg = next(
        s
        for s in client.get("/v1/rules/suggestions", headers=AUTH).json()["suggestions"]
        if s["id"] == "mined-tile-grout"
    )
    assert sg["covered_by"] == ["tile-adhesive"] and sg["extends"] == []
    wrong = client.post(
        "/v1/rules/suggestions/mined-tile-grout/accept",
        params={"into": "paint-essentials"},
        headers=AUTH,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["path"] == "into"


def test_products_and_categories_for_the_page(client) -> None:
    r = client.get("/v1/rules/products", params={"q": "GROUT"}, headers=AUTH).json()
    assert {p["sku"] for p in r["items"]} == {"GR1", "GR2", "GR3"}
    assert "laminate" in client.get("/v1/rules/categories", headers=AUTH).json()["categories"]


def test_writes_reach_the_engine_at_once_and_other_processes_by_polling(client, settings) -> None:
    runtime = client.app.state.rules_runtime
    assert runtime.engine().match_skus([("L1", 1)], NO_STYLE) == []
    client.post("/v1/rules", json=rule(), headers=AUTH)
    assert [f.rule_id for f in runtime.engine().match_skus([("L1", 1)], NO_STYLE)] == [
        "lam-underlay"
    ]
    # another API process: its own runtime on the same database, polling
    other = RulesRuntime(settings, RuleStore(settings.resolved_database_url)).start(lambda: CATALOG)
    try:
        assert [f.rule_id for f in other.engine().match_skus([("L1", 1)], NO_STYLE)] == [
            "lam-underlay"
        ]
        client.post("/v1/rules/lam-underlay/disable", headers=AUTH)
        deadline = time.monotonic() + 5
        while other.engine().match_skus([("L1", 1)], NO_STYLE) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.engine().match_skus([("L1", 1)], NO_STYLE) == []
    finally:
        other.stop()


def test_no_catalog_means_no_engine_and_503_for_catalog_routes(settings) -> None:
    with TestClient(rules_app(settings, None)) as c:
        assert c.app.state.rules_runtime.engine() is None
        assert c.get("/v1/rules", headers=AUTH).status_code == 200
        assert (
            c.post("/v1/rules/preview", json={"basket": [{"sku": "P1"}]}, headers=AUTH).status_code
            == 503
        )
        assert c.get("/v1/rules/products", params={"q": "x"}, headers=AUTH).status_code == 503
        # without a catalog, names cannot be checked: a structurally valid rule is accepted
        assert (
            c.post(
                "/v1/rules", json=rule(trigger={"categories": ["laminat"]}), headers=AUTH
            ).status_code
            == 201
        )


def _rule_routes(client) -> list[tuple[str, str]]:
    """Every documented /v1/rules operation (from the OpenAPI spec, so new routes are covered)."""
    out = []
    for path, ops in client.get("/openapi.json").json()["paths"].items():
        if path.startswith("/v1/rules"):
            for method in ops:
                out.append(
                    (
                        method.upper(),
                        path.replace("{rule_id}", "paint-primer").replace("{suggestion_id}", "x"),
                    )
                )
    return out


def test_every_rules_route_refuses_missing_or_wrong_key(client, settings) -> None:
    routes = _rule_routes(client)
    assert len(routes) >= 17
    for method, path in routes:
        assert client.request(method, path).status_code == 401, (method, path)
        assert (
            client.request(method, path, headers={"Authorization": "Bearer nope"}).status_code
            == 403
        )
        assert (
            client.request(method, path, headers={"Authorization": "Basic " + KEY}).status_code
            == 401
        )
    assert (
        client.get("/v1/rules/paint-primer", headers=AUTH).json()["version"] == 1
    )  # nothing changed
    unset = settings.model_copy(update={"merchandiser_key": None})
    with TestClient(rules_app(unset, CATALOG)) as c:
        for method, path in routes:
            r = c.request(method, path, headers=AUTH)
            assert r.status_code == 503 and "RECSYS_MERCHANDISER_KEY" in r.json()["detail"]


def test_page_and_static_files_are_served(client) -> None:
    page = client.get("/admin/rules")
    assert page.status_code == 200 and "Merchandiser key" in page.text and "<label" in page.text
    assert (
        client.get("/admin/rules/static/rules.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert client.get("/admin/rules/static/../store.py").status_code == 404


def test_openapi_has_examples_on_rule_bodies(client) -> None:
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/rules"]["post"]
    assert post["requestBody"]["content"]["application/json"]["examples"]
    assert spec["paths"]["/v1/rules/{rule_id}"]["put"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    assert "409" in spec["paths"]["/v1/rules/{rule_id}"]["put"]["responses"]
    assert spec["paths"]["/v1/rules/import"]["post"]["requestBody"]["content"]["application/yaml"][
        "example"
    ]


@pytest.mark.postgres
def test_api_on_postgresql(postgres_url, tmp_path) -> None:
    import uuid

    prefix = f"api{uuid.uuid4().hex[:8]}_"
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, merchandiser_key=KEY)
    try:
        with TestClient(rules_app(settings, CATALOG, MINED, table_prefix=prefix)) as c:
            assert c.get("/v1/rules", headers=AUTH).json()["total"] == 10  # defaults seeded
            assert c.post("/v1/rules", json=rule(), headers=AUTH).status_code == 201
            assert (
                c.put(
                    "/v1/rules/lam-underlay",
                    json=rule(priority=2),
                    headers={**AUTH, "If-Match": '"1"'},
                ).status_code
                == 200
            )
            assert (
                c.put(
                    "/v1/rules/lam-underlay",
                    json=rule(priority=3),
                    headers={**AUTH, "If-Match": '"1"'},
                ).status_code
                == 409
            )
            assert (
                len(c.get("/v1/rules/lam-underlay/history", headers=AUTH).json()["versions"]) == 2
            )
            fired = c.app.state.rules_runtime.engine().match_skus([("L1", 1)], NO_STYLE)
            assert [f.rule_id for f in fired] == ["lam-underlay"]
    finally:
        RuleStore(postgres_url, prefix).drop_tables()


def test_a_database_that_is_down_does_not_stop_the_service(tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        merchandiser_key=KEY,
        rules_poll_seconds=0.2,
    )
    with TestClient(rules_app(settings, CATALOG)) as c:
        runtime = c.app.state.rules_runtime
        assert runtime.engine() is None and "rule store unavailable" in runtime.last_error
        assert c.get("/admin/rules").status_code == 200
