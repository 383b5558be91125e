"""Issue 13 item 8: a YAML import (mode=merge) based on an old export silently reverted a
concurrent edit. Exports now carry each rule's stored version; an import whose versions are
stale gets 409 naming the rules, and nothing is written."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient

from serving.app import create_app

MERCH = {"Authorization": "Bearer test-merch-key"}
YAML = {**MERCH, "Content-Type": "application/yaml"}


def test_import_of_a_stale_export_is_409_and_writes_nothing(settings_for) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for())) as client:
        exported = client.get("/v1/rules/export", headers=MERCH)
        assert exported.status_code == 200
        doc = yaml.safe_load(exported.text)
        assert doc["rules"] and all(isinstance(r["version"], int) for r in doc["rules"])
        target = doc["rules"][0]
        rid, version = target["id"], target["version"]

        # someone else edits the rule after the export
        current = client.get(f"/v1/rules/{rid}", headers=MERCH).json()
        edited = {**current["rule"], "name": "edited meanwhile"}
        r = client.put(
            f"/v1/rules/{rid}", json=edited, headers={**MERCH, "If-Match": f'"{version}"'}
        )
        assert r.status_code == 200, r.text

        # the stale file, changed locally, is imported: refused, naming the rule
        target["name"] = "my old local edit"
        r = client.post("/v1/rules/import?mode=merge", content=yaml.safe_dump(doc), headers=YAML)
        assert r.status_code == 409, r.text
        assert r.json()["conflicts"] == [
            {"id": rid, "file_version": version, "stored_version": version + 1}
        ]
        assert rid in r.json()["detail"]
        assert (
            client.get(f"/v1/rules/{rid}", headers=MERCH).json()["rule"]["name"]
            == "edited meanwhile"
        )

        # a fresh export round-trips: nothing changes, no conflict
        fresh = client.get("/v1/rules/export", headers=MERCH).text
        r = client.post("/v1/rules/import?mode=merge", content=fresh, headers=YAML)
        assert r.status_code == 200 and r.json()["updated"] == [], r.text
        # a hand-written file without versions still imports (versions are optional)
        plain = yaml.safe_load(fresh)
        for rule in plain["rules"]:
            rule.pop("version")
        r = client.post("/v1/rules/import?mode=merge", content=yaml.safe_dump(plain), headers=YAML)
        assert r.status_code == 200, r.text
