"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from serving.deps import EventLogDep, HolderDep, MetricsDep, OnlineStateDep
from serving.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="The process is alive")
async def healthz() -> HealthOut:
    return HealthOut(status="ok")


def _probe(fn) -> str | None:  # noqa: ANN001
    try:
        fn()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"[:300]


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Ready to serve: a model is loaded and the stores answer",
    responses={503: {"model": ReadyOut, "description": "Not ready; `problems` says why."}},
)
async def readyz(
    holder: HolderDep, events: EventLogDep, online: OnlineStateDep
) -> JSONResponse:
    model = holder.current
    problems: list[str] = []
    if model is None:
        why = f": {holder.last_error}" if holder.last_error else ""
        problems.append(f"no model loaded from {holder.source.uri}{why}")
    store = await run_in_threadpool(_probe, events.ping)
    if store:
        problems.append(f"event store unreachable: {store}")
    state = await run_in_threadpool(_probe, online.ping)
    if state:
        problems.append(f"online state unreachable: {state}")
    out = ReadyOut(
        ready=not problems,
        model_loaded=model is not None,
        model_version=model.version if model else None,
        store_reachable=store is None,
        online_state_reachable=state is None,
        problems=problems,
    )
    return JSONResponse(out.model_dump(), status_code=200 if out.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics_endpoint(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
