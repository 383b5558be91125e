"""Every admin route refuses a missing or wrong key; an unset key disables them (503)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app

ADMIN_ROUTES = [("GET", "/admin/model"), ("POST", "/admin/reload")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_refuse_missing_and_wrong_keys(settings_for, method: str, path: str) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for(admin_key="right-key"))) as client:
        r = client.request(method, path)
        assert r.status_code == 401 and "Bearer" in r.json()["detail"]
        r = client.request(method, path, headers={"Authorization": "Bearer wrong-key"})
        assert r.status_code == 403 and r.json()["detail"] == "wrong admin key"
        r = client.request(method, path, headers={"Authorization": "Basic right-key"})
        assert r.status_code == 401
        r = client.request(method, path, headers={"Authorization": "Bearer right-key"})
        assert r.status_code == 200


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_disabled_without_key(settings_for, method: str, path: str) -> None:  # noqa: ANN001
    with TestClient(create_app(settings_for(admin_key=None))) as client:
        r = client.request(method, path, headers={"Authorization": "Bearer anything"})
        assert r.status_code == 503 and "RECSYS_ADMIN_KEY" in r.json()["detail"]


def test_every_admin_route_is_covered(settings_for) -> None:  # noqa: ANN001
    paths = create_app(settings_for()).openapi()["paths"]
    admin = {
        (method.upper(), path)
        for path, ops in paths.items()
        for method in ops
        if path.startswith("/admin/") and not path.startswith("/admin/rules")
    }
    assert admin == set(ADMIN_ROUTES)
