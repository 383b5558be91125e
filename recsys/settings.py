"""Deployment settings: one object, every value overridable by a ``RECSYS_*`` environment variable.

Pipeline and model configuration live in versioned files (``recsys.config``); these are the
values that change between machines (URLs, keys, ports, budgets).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from recsys.recommendation import DEFAULT_ACCESSORY_SLOTS


class Settings(BaseSettings):
    """Everything a deployment may change. Defaults work on a laptop with nothing installed."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("data"), description="Root for embedded stores and artifacts.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL for events and rules; default: SQLite in data_dir."
    )
    redis_url: str | None = Field(
        None, description="Redis URL for shared online state; default: in-process state."
    )
    model_name: str = Field("home-xsell", description="Registered model name in MLflow.")
    model_alias: str = Field("champion", description="Registry alias serving follows.")
    model_uri: str | None = Field(
        None, description="Explicit model to serve (bundle path, runs:/ or models:/ URI)."
    )
    reload_poll_seconds: float = Field(30.0, ge=0, description="Registry poll interval; 0 = off.")
    rules_poll_seconds: float = Field(
        2.0, gt=0, description="How often rule changes are picked up."
    )
    admin_key: str | None = Field(None, description="Bearer key for /admin; unset = disabled.")
    merchandiser_key: str | None = Field(None, description="Bearer key for rule writes.")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int | None = Field(
        None, ge=1, description="API processes for `recsys serve`; unset = one per available core."
    )
    latency_budget_ms: float = Field(50.0, gt=0)
    max_k: int = Field(100, ge=1)
    max_basket_items: int = Field(200, ge=1)
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    max_event_batch: int = Field(1000, ge=1)
    serving_sync_handlers: bool = Field(
        False, description="Run recommend in the thread pool (def) instead of async def."
    )
    accessory_slots: int = Field(
        DEFAULT_ACCESSORY_SLOTS,
        ge=0,
        le=20,
        description=(
            "Accessory slots in one answer (one per category across all fired rules, then a "
            "second choice of a category shown in slots left free)."
        ),
    )
    serving_max_in_flight: int = Field(
        64, ge=1, description="Requests in flight per worker beyond which new ones get 503."
    )
    impression_log_enabled: bool = Field(
        True, description="Record every answer in the impression log (attribution, experiments)."
    )
    impression_flush_seconds: float = Field(
        1.0,
        gt=0,
        description="Impressions are written in batches at least this often; a kill -9 "
        "can lose about this much of the last answers' impressions (never events).",
    )
    impression_batch_size: int = Field(500, ge=1, description="Impressions per write.")
    impression_queue_max: int = Field(
        100_000,
        ge=1,
        description="Impressions waiting to be written beyond which new ones are dropped.",
    )
    attribution_window_hours: float = Field(
        24.0,
        gt=0,
        description="A cart or purchase of a shown SKU by the same shopper within this "
        "many hours of the impression is credited to it (see docs/experiments.md).",
    )
    effect_default_days: int = Field(
        30,
        ge=1,
        le=3660,
        description="Window of a rule's or control's effect (impressions, attach rate, "
        "revenue) when the request names none: the last this many days.",
    )
    effect_max_days: int = Field(
        366,
        ge=1,
        le=3660,
        description="Longest window a rule's or control's effect may be asked for (each "
        "request attributes every event of the window).",
    )
    experiment_memory_budget_mb: float = Field(
        4096.0,
        gt=0,
        description="Models of running experiment variants (bundle size on disk, "
        "plus the champion) must fit in this; a start that would exceed it is refused.",
    )
    experiment_poll_seconds: float = Field(
        2.0, gt=0, description="How often serving picks up experiment starts and stops."
    )

    spark_master: str = Field(
        "local[*]",
        description="Spark master for `recsys train --engine spark`: local[*] (this machine) "
        "or a cluster URL (spark://host:7077, yarn, k8s://...).",
    )
    spark_shuffle_partitions: int = Field(
        16, ge=1, description="spark.sql.shuffle.partitions; a cluster wants ~2-3 per core."
    )
    spark_driver_memory: str | None = Field(
        None, description="spark.driver.memory (e.g. 4g); unset = Spark's default (1g)."
    )
    aggregate_dense_max_items: int = Field(
        10_000,
        ge=0,
        description="Catalogs up to this many items get their item pair counts as one dense "
        "n x n int32 matrix (4 n^2 bytes, fixed whatever the event count); larger ones as "
        "sparse rows (`--engine spark`).",
    )
    aggregate_min_pair_count: int = Field(
        1,
        ge=1,
        description="Above aggregate_dense_max_items: item pairs bought together in fewer "
        "orders are dropped on the cluster before they reach the driver (1 = exact; "
        "co-purchase ignores pairs below its min_support anyway).",
    )

    @property
    def resolved_database_url(self) -> str:
        """The events/rules database; an SQLite file under ``data_dir`` unless a URL is set."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'recsys.db').resolve()}"

    def mlflow_uris(self) -> tuple[str, str]:
        """MLflow tracking and registry URIs. The standard ``MLFLOW_TRACKING_URI`` /
        ``MLFLOW_REGISTRY_URI`` win (read when called, as MLflow itself does); otherwise the
        embedded SQLite store ``<data_dir>/mlflow.db`` that training and serving share."""
        tracking = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not tracking:
            tracking = f"sqlite:///{(Path(self.data_dir) / 'mlflow.db').resolve()}"
        registry = os.environ.get("MLFLOW_REGISTRY_URI", "").strip() or tracking
        return tracking, registry
