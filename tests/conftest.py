"""Fixtures shared by every test package: real services (PostgreSQL, Redis) and small worlds.

Service-backed tests skip with a reason on a laptop without the service, never in CI.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "RECSYS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _service_or_skip(url: str, port: int, what: str) -> str:
    if _reachable(url, port):
        return url
    if IN_CI:
        pytest.fail(f"{what} is not reachable at {url}; CI must provide it (see .ci/services.sh)")
    pytest.skip(f"{what} not reachable at {url}; start it or set the URL env var to run this test")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of the real PostgreSQL test database."""
    return _service_or_skip(POSTGRES_URL, 5432, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real Redis (database 15, flushed by the tests that use it)."""
    return _service_or_skip(REDIS_URL, 6379, "Redis")
