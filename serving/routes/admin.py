"""Admin routes (``Authorization: Bearer <RECSYS_ADMIN_KEY>``): model status and reload."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from serving.auth import require_admin
from serving.deps import HolderDep
from serving.schemas import ModelInfo, Problem, ReloadOut

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing credential."},
    403: {"model": Problem, "description": "Wrong key."},
    503: {"model": Problem, "description": "Admin routes disabled: RECSYS_ADMIN_KEY is not set."},
}


@router.get(
    "/model", response_model=ModelInfo, summary="The served model", responses=AUTH_RESPONSES
)
def model_info(holder: HolderDep) -> ModelInfo:
    m = holder.current
    return ModelInfo(
        loaded=m is not None,
        version=m.version if m else None,
        run_id=m.run_id if m else None,
        source_uri=holder.source.uri,
        resolved_uri=m.pointer.resolved if m else None,
        loaded_at=m.loaded_at if m else None,
        bundle_dir=str(m.bundle_dir) if m else None,
        catalog_size=len(m.catalog) if m else None,
        last_error=holder.last_error,
        last_check=holder.last_check,
        poll_seconds=holder.poll_seconds,
    )


@router.post(
    "/reload",
    response_model=ReloadOut,
    summary="Check the registry alias now and swap in a new model",
    description="Loads and smoke-tests the model the alias points at; swaps only if it works, "
    "otherwise keeps the current one (outcome `failed` with the reason). `force` reloads even "
    "an unchanged model; `wait=false` returns at once (outcome `started`). Reaches the worker "
    "that answers; the others follow within RECSYS_RELOAD_POLL_SECONDS.",
    responses=AUTH_RESPONSES,
)
async def reload_model(
    holder: HolderDep,
    force: Annotated[bool, Query()] = False,
    wait: Annotated[bool, Query()] = True,
) -> ReloadOut:
    if not wait:
        holder.reload_in_background(force=force)
        m = holder.current
        return ReloadOut(
            outcome="started",
            version=m.version if m else None,
            message="reload started in the background",
            seconds=0.0,
        )
    result = await run_in_threadpool(holder.reload, force=force)
    return ReloadOut(
        outcome=result.outcome,
        version=result.version,
        message=result.message,
        seconds=round(result.seconds, 3),
    )
