"""The app factory. Nothing happens at import time: ``create_app`` wires routes and state, the
``lifespan`` opens stores, loads the model (no model is fine: the API degrades and ``/readyz``
says why) and starts the registry poller and the rules runtime.

``uvicorn --factory serving.app:app_from_env`` builds it from ``RECSYS_*`` variables (what
``recsys serve`` runs in each worker).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from feature_store.attribution import EventContextLog
from feature_store.event_log import EventLog
from feature_store.experiment_store import ExperimentStore
from feature_store.impression_log import ImpressionLog
from feature_store.online_state import make_online_state
from recsys.settings import Settings
from serving.docs_page import install_docs
from serving.errors import document_error_shape, install_error_handlers
from serving.experiment_runtime import ExperimentRuntime
from serving.impressions import ImpressionRecorder, Impressions, rules_version_of
from serving.metrics import ServingMetrics
from serving.middleware import ServingMiddleware
from serving.model_holder import LoadedModel, ModelHolder, ReloadResult
from serving.model_source import ModelSource
from serving.routes import admin, events, experiments, health, products, recommendations, styles
from serving.schemas import PROBLEM_RESPONSES

if TYPE_CHECKING:
    import numpy as np

    from recsys.data.catalog import Catalog
    from recsys.recommender import Recommender
    from recsys.rules.mining import Suggestion
    from serving.rules.runtime import CatalogProvider, RecommenderProvider, SuggestionsProvider

log = logging.getLogger(__name__)

DESCRIPTION = """Style-aware cross-selling for home e-commerce.

Storefront endpoints (`/v1/...`) need no credential and never write anything but events.
Admin routes need `Authorization: Bearer <RECSYS_ADMIN_KEY>`; rule writes need the
merchandiser key. Every 4xx says which field is wrong and what is allowed.
"""


def _install_rules(app: FastAPI, settings: Settings) -> Any:
    """H5's rules package (routes, store, admin page), if present in this build."""
    try:
        from serving.rules import install_rules

        return install_rules(app, settings)
    except ImportError as exc:
        log.error("rules package unavailable (%s): serving without merchandiser rules", exc)
        return None


def create_app(
    settings: Settings | None = None,
    *,
    sync_handlers: bool | None = None,
    loader: Any = None,
    max_in_flight: int | None = None,
) -> FastAPI:
    """Build the API. ``loader`` (bundle dir -> Recommender) defaults to the feature store's
    ``load_recommender``; ``sync_handlers`` picks ``def`` over ``async def`` for recommend
    (default ``settings.serving_sync_handlers``); ``max_in_flight`` bounds concurrent requests
    per worker, beyond which new ones get 503 + Retry-After (shed load rather than let every
    answer wait: ~64 x 3-5 ms of queue is already past any latency budget); default
    ``settings.serving_max_in_flight``."""
    settings = settings or Settings()
    if max_in_flight is None:
        max_in_flight = settings.serving_max_in_flight
    if sync_handlers is None:
        sync_handlers = settings.serving_sync_handlers
    metrics = ServingMetrics()
    source = ModelSource(settings)

    def on_swap(model: LoadedModel) -> None:
        metrics.set_model(model.version, model.run_id)

    def on_reload(result: ReloadResult) -> None:
        metrics.reloads.labels(result.outcome).inc()

    holder_kwargs: dict[str, Any] = {"on_swap": on_swap, "on_reload": on_reload}
    if loader is not None:
        holder_kwargs["loader"] = loader
    holder = ModelHolder(source, poll_seconds=settings.reload_poll_seconds, **holder_kwargs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _limit_threads()
        app.state.event_log = EventLog(settings.resolved_database_url)
        app.state.event_context = EventContextLog(app.state.event_log.engine)
        # a Redis call may take at most the latency budget (a frozen Redis used to add 2 s)
        app.state.online_state = make_online_state(
            settings.redis_url, timeout_seconds=settings.latency_budget_ms / 1000
        )
        result = await run_in_threadpool(holder.reload)
        if holder.current is None:
            log.warning("starting without a model: %s", result.message)
        holder.start_polling()
        app.state.impressions = _impressions(settings, app.state.rules_runtime)
        exp_runtime = app.state.experiments = ExperimentRuntime(
            settings, ExperimentStore(settings.resolved_database_url), holder
        )
        runtime = app.state.rules_runtime
        if runtime is not None:
            try:
                catalog_p, recommender_p, suggestions_p = _rules_providers(holder)
                await run_in_threadpool(runtime.start, catalog_p, recommender_p, suggestions_p)
            except Exception:  # noqa: BLE001 - serve without rules rather than not at all
                log.exception("rules runtime failed to start: serving without merchandiser rules")
                runtime = None
        try:
            await run_in_threadpool(exp_runtime.start, runtime)
        except Exception:  # noqa: BLE001 - serve the champion to everyone rather than not at all
            log.exception("experiments unavailable at start: the champion serves every request")
        try:
            yield
        finally:
            exp_runtime.stop()
            holder.stop()
            if runtime is not None:
                await run_in_threadpool(runtime.stop)
            app.state.impressions.close()  # drains queued impressions: a clean stop loses none
            effect_log = getattr(app.state, "effect_impression_log", None)
            if effect_log is not None:  # opened by the effect routes when recording is off
                effect_log.dispose()
            app.state.online_state.close()
            app.state.event_log.dispose()

    app = FastAPI(
        title="home-xsell recommendations",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # no trailing-slash redirects: they echoed the request's Host header into Location
        redirect_slashes=False,
        docs_url=None,  # served by serving.docs_page with local assets
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.holder = holder
    app.state.impressions = Impressions(None)  # replaced by the recording one in lifespan
    install_error_handlers(app)
    documented: dict[str, Any] = {"responses": PROBLEM_RESPONSES}
    app.include_router(recommendations.build_router(sync_handlers=sync_handlers), **documented)
    app.include_router(products.router, **documented)
    app.include_router(styles.router, **documented)
    app.include_router(events.router, **documented)
    app.include_router(admin.router, **documented)
    app.include_router(experiments.build_router(), **documented)
    app.include_router(health.router)
    app.state.rules_runtime = _install_rules(app, settings)
    document_error_shape(app)
    app.add_middleware(
        ServingMiddleware,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        max_in_flight=max_in_flight,
    )
    return app


def _impressions(settings: Settings, rules_runtime: Any) -> Impressions:
    recorder = None
    if settings.impression_log_enabled:
        recorder = ImpressionRecorder(
            ImpressionLog(settings.resolved_database_url),
            flush_seconds=settings.impression_flush_seconds,
            batch_size=settings.impression_batch_size,
            max_queue=settings.impression_queue_max,
        ).start()
    return Impressions(recorder, rules_version_of(rules_runtime))


def _rules_providers(
    holder: ModelHolder,
) -> tuple[CatalogProvider, RecommenderProvider, SuggestionsProvider]:
    """Callables the rules runtime uses to see the current model (it may be swapped): the
    catalog with its item style matrix, the recommender, the bundle's mined suggestions."""

    def catalog_provider() -> tuple[Catalog, np.ndarray | None] | None:
        m = holder.current
        if m is None:
            return None
        return m.catalog, m.recommender.item_styles

    def recommender_provider() -> Recommender | None:
        m = holder.current
        return m.recommender if m is not None else None

    def suggestions_provider() -> list[Suggestion]:
        # the bundle's mined_rules.json, already read when the model was loaded
        m = holder.current
        return list(m.recommender.mined_suggestions or []) if m is not None else []

    return catalog_provider, recommender_provider, suggestions_provider


def _limit_threads() -> None:
    """One thread per request: BLAS/faiss threads only fight the other workers."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import faiss

        faiss.omp_set_num_threads(1)
    except Exception:  # noqa: BLE001 - faiss is optional for a bundle without ANN
        pass


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the environment."""
    return create_app(Settings())
