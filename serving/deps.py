"""Typed FastAPI dependencies: everything a route needs, taken from the app's state.

The model is read ONCE per request (``CurrentModel``): a hot swap during the request does not
change the object the request works with. Every dependency is ``async def``: they only read
app state, and FastAPI runs a plain ``def`` dependency in the thread pool (a thread hop per
dependency per request, most of the framework's cost per recommendation; issue 11).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from feature_store.event_log import EventLog
from feature_store.impression_log import ImpressionLog
from feature_store.online_state import OnlineState
from recsys.controls import CompiledControls
from recsys.settings import Settings
from serving.metrics import ServingMetrics
from serving.model_holder import LoadedModel, ModelHolder
from serving.rules.runtime import CatalogView, RulesRuntime
from serving.rules.service import EffectReader, catalog_prices


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_model(request: Request) -> LoadedModel | None:
    return request.app.state.holder.current


async def get_event_log(request: Request) -> EventLog:
    return request.app.state.event_log


async def get_online_state(request: Request) -> OnlineState:
    return request.app.state.online_state


async def get_metrics(request: Request) -> ServingMetrics:
    return request.app.state.metrics


async def get_rules(request: Request) -> Any:
    """The compiled merchandiser rules (``AccessoryRules``) or None when rules are off."""
    runtime = getattr(request.app.state, "rules_runtime", None)
    if runtime is None:
        return None
    try:
        return runtime.engine()
    except Exception:  # noqa: BLE001 - rules are optional for an answer
        return None


async def get_controls(request: Request) -> CompiledControls | None:
    """The compiled answer controls, or None when rules (and so controls) are off."""
    runtime = getattr(request.app.state, "rules_runtime", None)
    return runtime.controls() if runtime is not None else None


async def get_rules_runtime(request: Request) -> RulesRuntime:
    """The rules runtime ``install_rules`` put on the app (rules routes exist only then)."""
    return request.app.state.rules_runtime


async def get_catalog_view(
    runtime: Annotated[RulesRuntime, Depends(get_rules_runtime)],
) -> CatalogView:
    """The served catalog for the rules routes; 503 until a model is loaded."""
    view = runtime.catalog_view()
    if view is None:
        raise HTTPException(
            503, "no model loaded yet: the catalog is unavailable", headers={"Retry-After": "5"}
        )
    return view


async def get_author(
    x_author: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Who makes the change (recorded in the history).",
            examples=["alice"],
        ),
    ] = None,
) -> str:
    """The name a merchandiser's change is recorded under."""
    name = (x_author or "").strip()[:100]
    return name or "merchandiser"


async def get_event_context(request: Request) -> Any:
    """Where events' attribution fields go (``feature_store.attribution.EventContextLog``)."""
    return request.app.state.event_context


async def get_experiments(request: Request) -> Any:
    """Routes requests to experiment variants (``serving.experiment_runtime.ExperimentRuntime``)."""
    return request.app.state.experiments


async def get_impressions(request: Request) -> Any:
    """The answer identifier and impression recorder (``serving.impressions.Impressions``)."""
    return request.app.state.impressions


async def get_effect_reader(request: Request) -> EffectReader:
    """Reads rules' and controls' effects: the app's impression log (one is opened, once, when
    recording is off: earlier answers still count), its event log and the served prices."""
    state = request.app.state
    settings: Settings = state.settings
    recorder = getattr(getattr(state, "impressions", None), "recorder", None)

    def impressions() -> ImpressionLog:
        if recorder is not None:
            return recorder.log
        if getattr(state, "effect_impression_log", None) is None:
            state.effect_impression_log = ImpressionLog(settings.resolved_database_url)
        return state.effect_impression_log

    def events() -> EventLog:
        if getattr(state, "event_log", None) is None:
            state.event_log = EventLog(settings.resolved_database_url)
        return state.event_log

    runtime = state.rules_runtime
    return EffectReader(
        settings,
        impressions,
        events,
        flush=recorder.flush if recorder is not None else None,
        prices=lambda: catalog_prices(runtime),
    )


async def get_request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id") or "-"


async def get_deadline(request: Request) -> float:
    """Absolute ``time.perf_counter()`` by which the answer must be ready."""
    settings: Settings = request.app.state.settings
    t0 = request.scope.get("state", {}).get("t0") or time.perf_counter()
    return t0 + settings.latency_budget_ms / 1000.0


@dataclass(frozen=True)
class RecommendContext:
    """What ``POST /v1/recommendations`` reads from the app, resolved by one dependency:
    FastAPI pays a sub-resolution per dependency, and eleven of them were about a tenth of the
    route's CPU (issue 11). Each field comes from the single-purpose dependency above."""

    model: LoadedModel | None
    rules: Any
    controls: CompiledControls | None
    deadline: float
    online: OnlineState
    metrics: ServingMetrics
    settings: Settings
    request_id: str
    recorder: Any
    experiments: Any


async def get_recommend_context(request: Request) -> RecommendContext:
    return RecommendContext(
        model=await get_model(request),
        rules=await get_rules(request),
        controls=await get_controls(request),
        deadline=await get_deadline(request),
        online=await get_online_state(request),
        metrics=await get_metrics(request),
        settings=await get_settings(request),
        request_id=await get_request_id(request),
        recorder=await get_impressions(request),
        experiments=await get_experiments(request),
    )


SettingsDep = Annotated[Settings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
CurrentModel = Annotated[LoadedModel | None, Depends(get_model)]
EventLogDep = Annotated[EventLog, Depends(get_event_log)]
OnlineStateDep = Annotated[OnlineState, Depends(get_online_state)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
RulesDep = Annotated[Any, Depends(get_rules)]
ControlsDep = Annotated[CompiledControls | None, Depends(get_controls)]
RulesRuntimeDep = Annotated[RulesRuntime, Depends(get_rules_runtime)]
CatalogViewDep = Annotated[CatalogView, Depends(get_catalog_view)]
AuthorDep = Annotated[str, Depends(get_author)]
RequestId = Annotated[str, Depends(get_request_id)]
Deadline = Annotated[float, Depends(get_deadline)]
ImpressionsDep = Annotated[Any, Depends(get_impressions)]
EventContextDep = Annotated[Any, Depends(get_event_context)]
ExperimentsDep = Annotated[Any, Depends(get_experiments)]
EffectReaderDep = Annotated[EffectReader, Depends(get_effect_reader)]
RecommendContextDep = Annotated[RecommendContext, Depends(get_recommend_context)]
