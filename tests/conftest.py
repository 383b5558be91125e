"""Fixtures shared by every test package: real services (PostgreSQL, Redis) and small fitted
model bundles.

Service-backed tests skip with a reason on a laptop without the service, never in CI.
A test that uses a fitted model, a server process or an MLflow store is marked ``slow`` here, from its fixtures
(one rule rather than a marker to remember on every test), so ``make check`` stays an edit
loop and ``make test`` still runs everything.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "RECSYS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("RECSYS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SMALL_PIPELINE = Path(__file__).parent / "serving" / "pipeline_small.yaml"

# Fixtures that fit a model (seconds each, once per session), start server processes, or
# create a real MLflow store (its schema migrations alone take seconds).
SLOW_FIXTURES = frozenset(
    {"bundle_dir", "bundle_dir_b", "fitted_bundle", "small_fit", "server_factory", "mlflow_env"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that needs a fitted model or a server process."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


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


def _fit_bundle(out: Path, seed: int) -> Path:
    from feature_store import load_pipeline_config
    from recsys.sample_world import generate_world
    from training.fit import fit_recommender

    world = generate_world(seed=seed, n_orders=2500)  # the sample catalog (4,000 SKUs)
    config = load_pipeline_config(SMALL_PIPELINE)
    result = fit_recommender(world.catalog, world.interactions, config, seed=seed)
    result.recommender.save(out)
    return out


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle fitted on a small sample world (default catalog, 2,500 orders)."""
    return _fit_bundle(tmp_path_factory.mktemp("bundle") / "bundle", seed=7)


@pytest.fixture(scope="session")
def bundle_dir_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second, different bundle (another seed) for hot swaps."""
    return _fit_bundle(tmp_path_factory.mktemp("bundle_b") / "bundle", seed=8)
