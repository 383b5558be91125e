"""Fixtures for the engine tests: one small sample world on disk (single file and
partitioned by day) and one local Spark session for the whole test run (starting a JVM
costs seconds, so the Spark tests share it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def engine_world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Sample world (300 SKUs, ~1,500 project orders): catalog, interactions (one file),
    interactions_dir (date-partitioned), ground_truth."""
    from recsys.sample_world import generate_world

    out = tmp_path_factory.mktemp("engine-world")
    world = generate_world(seed=3, n_orders=1500, n_skus=300)
    paths = dict(world.save(out))
    paths["interactions_dir"] = out / "interactions"
    world.interactions.save_partitioned(paths["interactions_dir"])
    return paths


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """local[2] with few shuffle partitions: the CI machine has 2 cores and the data is small."""
    from recsys.engine.spark import spark_session

    session = spark_session("local[2]", shuffle_partitions=4, driver_memory="1g")
    yield session
    session.stop()
