"""Prometheus metrics of one app.

Each app owns a ``CollectorRegistry`` (tests build many apps in one process). With several
uvicorn workers, ``recsys serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start;
metrics are then written to per-process files and ``/metrics`` aggregates all workers
(``prometheus_client.multiprocess``).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServingMetrics:
    """Latency per endpoint, stage timings, degraded/fallback counts, events, model version."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry()
        reg = None if self.multiprocess else self.registry
        self.requests = Counter(
            "recsys_http_requests",
            "HTTP requests by endpoint and status.",
            ["endpoint", "method", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "recsys_http_request_seconds",
            "Server-side latency per endpoint.",
            ["endpoint", "method"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.stages = Histogram(
            "recsys_stage_seconds",
            "Time per recommendation stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.degraded = Counter(
            "recsys_degraded_answers",
            "Answers flagged degraded, by reason.",
            ["reason"],
            registry=reg,
        )
        self.fallbacks = Counter(
            "recsys_fallbacks",
            "Answers produced by a fallback path, by kind.",
            ["kind"],
            registry=reg,
        )
        self.shed = Counter(
            "recsys_shed_requests",
            "Requests refused with 503 because the worker was full.",
            registry=reg,
        )
        self.events_accepted = Counter(
            "recsys_events_accepted", "Events durably stored.", registry=reg
        )
        self.events_duplicate = Counter(
            "recsys_events_duplicate", "Events skipped as already stored.", registry=reg
        )
        self.events_conflicting = Counter(
            "recsys_events_conflicting_duplicate",
            "Duplicate event_ids sent with a different payload (stored event kept).",
            registry=reg,
        )
        self.reloads = Counter(
            "recsys_model_reloads", "Model reload attempts by outcome.", ["outcome"], registry=reg
        )
        self.model_info = Gauge(
            "recsys_model_info",
            "The served model (value 1 on the current version's labels).",
            ["version", "run_id"],
            registry=reg,
            multiprocess_mode="liveall",
        )

    def set_model(self, version: str, run_id: str | None) -> None:
        # set the old series to 0 rather than clear(): in multiprocess mode its file stays
        old = getattr(self, "_model_labels", None)
        if old is not None:
            self.model_info.labels(*old).set(0)
        self._model_labels = (version, run_id or "")
        self.model_info.labels(*self._model_labels).set(1)

    def render(self) -> tuple[bytes, str]:
        """The exposition text (all workers when multiprocess) and its content type."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
