"""Schemathesis over the whole OpenAPI document — public, admin and rules routes, with the
keys — through the real app with a real model: no 5xx (other than the documented 503s) and every
answer matches its documented schema and content type. Drives schemathesis' strategies
directly (its pytest plugin does not run under pytest 9), like ``tests/serving/test_fuzz.py``,
which covers the public routes more deeply."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from serving.app import create_app

pytestmark = pytest.mark.slow
ADMIN, MERCH = "fuzz-admin-key", "fuzz-merch-key"


@pytest.fixture(scope="module")
def whole_schema(bundle_dir, tmp_path_factory):  # noqa: ANN001, ANN201
    from recsys.settings import Settings

    data = tmp_path_factory.mktemp("fuzz_all")
    app = create_app(
        Settings(
            data_dir=data,
            model_uri=str(bundle_dir),
            reload_poll_seconds=0,
            admin_key=ADMIN,
            merchandiser_key=MERCH,
        )
    )
    with TestClient(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _key(path: str) -> str | None:
    if path.startswith("/admin"):
        return ADMIN
    if path.startswith("/v1/rules"):
        return MERCH
    return None


def test_whole_api_with_keys_has_no_server_error_or_schema_violation(whole_schema) -> None:  # noqa: ANN001
    operations = [result.ok() for result in whole_schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/admin/reload", "/v1/rules/import", "/v1/rules/{rule_id}", "/v1/events"} <= paths
    calls = 0
    refused: list[str] = []
    keyed_ok: list[str] = []
    for operation in operations:
        if operation.path == "/admin/reload":
            continue  # reloads the model: slow, and exercised by the hot-reload tests

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:  # noqa: ANN001
            nonlocal calls
            calls += 1
            key = _key(case.operation.path)
            if key is not None:
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
            response = case.call()
            if key is not None and response.status_code in (401, 403):
                refused.append(f"{case.method} {case.formatted_path}")
            if key is not None and response.status_code < 300:
                keyed_ok.append(case.operation.path)
            assert response.status_code < 500 or response.status_code == 503, (
                case.method,
                case.formatted_path,
                response.status_code,
                response.text[:300],
            )
            case.validate_response(response, checks=CHECKS)

        fuzz()
    assert calls >= 5 * (len(operations) - 1)
    assert not refused, f"the keys were not accepted: {refused[:3]}"
    assert {"/admin/model", "/v1/rules", "/v1/rules/export"} <= set(
        keyed_ok
    )  # really authenticated
