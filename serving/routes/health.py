"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from serving.auth import check_bearer
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


def _is_admin(request: Request) -> bool:
    if "authorization" not in request.headers:
        return False
    try:
        check_bearer(request, "admin")
    except HTTPException:
        return False
    return True


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Ready to do the job: a model is loaded, the event store takes a write, rules compiled",
    description="The event store check is a real write, rolled back (an SQLite file deleted "
    "or made read-only while serving fails it). Anonymous callers get short problem names; "
    "with the admin key `details` adds paths and error texts.",
    responses={503: {"model": ReadyOut, "description": "Not ready; `problems` says why."}},
)
async def readyz(
    request: Request, holder: HolderDep, events: EventLogDep, online: OnlineStateDep
) -> JSONResponse:
    model = holder.current
    problems: list[str] = []
    details: list[str] = []
    if model is None:
        problems.append("no model loaded")
        details.append(
            f"no model loaded from {holder.source.uri}: {holder.last_error or 'not tried yet'}"
        )
    store = await run_in_threadpool(_probe, events.probe_write)
    if store:
        problems.append("event store unreachable or not writable")
        details.append(f"event store: {store}")
    state = await run_in_threadpool(_probe, online.ping)
    if state:
        problems.append("online state unreachable")
        details.append(f"online state: {state}")
    rules = getattr(request.app.state, "rules_runtime", None)
    rules_error = getattr(rules, "last_error", None) if rules is not None else None
    if rules_error:
        problems.append("merchandiser rules not compiled")
        details.append(f"rules: {rules_error}")
    out = ReadyOut(
        ready=not problems,
        model_loaded=model is not None,
        model_version=model.version if model else None,
        store_reachable=store is None,
        online_state_reachable=state is None,
        rules_ready=rules_error is None,
        problems=problems,
        details=details if _is_admin(request) else None,
    )
    return JSONResponse(out.model_dump(), status_code=200 if out.ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics_endpoint(metrics: MetricsDep) -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
