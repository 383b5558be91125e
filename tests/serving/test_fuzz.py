"""Schemathesis fuzzing of the OpenAPI spec through the real app with a real model: no input
may produce a 5xx, and every answer matches its documented schema and content type.

Bounded (``max_examples`` per operation) so the module runs in well under a minute. The rules
routes (``/v1/rules``, ``/v1/controls``, ``/admin/rules``) are tested by their own package's tests.
"""

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


@pytest.fixture(scope="module")
def fuzz_schema(bundle_dir, tmp_path_factory):  # noqa: ANN001, ANN201
    from recsys.settings import Settings

    data = tmp_path_factory.mktemp("fuzz")
    app = create_app(
        Settings(data_dir=data, model_uri=str(bundle_dir), reload_poll_seconds=0, admin_key="k")
    )
    with TestClient(app):  # runs the lifespan: model, stores
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield schema.exclude(path_regex=r"^/(v1/rules|v1/controls|admin/rules)")


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_no_input_makes_a_server_error(fuzz_schema) -> None:  # noqa: ANN001
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) >= 9
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case) -> None:  # noqa: ANN001
            nonlocal calls
            calls += 1
            case.call_and_validate(checks=CHECKS)

        fuzz()
    assert calls >= 10 * len(operations)
