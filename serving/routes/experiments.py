"""``/v1/experiments`` (admin key): create, edit drafts, start, stop, history, report; and the
``/admin/experiments`` page that shows them (the page holds no data: its script signs in with
the admin key and calls this API like any other client)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from feature_store.attribution import EventContextLog
from feature_store.experiment_report import report
from feature_store.experiment_store import (
    ExperimentConflict,
    ExperimentNotFound,
    ExperimentRefused,
    ExperimentStore,
)
from feature_store.impression_log import ImpressionLog
from recsys.experiment import Experiment
from serving.auth import require_admin
from serving.deps import CurrentModel, EventLogDep, ExperimentsDep, ImpressionsDep, SettingsDep
from serving.schemas import Problem

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing credential."},
    403: {"model": Problem, "description": "Wrong key."},
    404: {"model": Problem, "description": "No such experiment."},
    409: {
        "model": Problem,
        "description": "Stale version, not a draft, placement taken, or over the memory budget.",
    },
}
Author = Annotated[
    str, Header(alias="X-Author", max_length=200, description="Who makes the change.")
]
BaseVersion = Annotated[int | None, Query(ge=1, description="The version your change is based on.")]


def _store(runtime: Any) -> ExperimentStore:
    return runtime.store


def _call(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
    try:
        return fn(*args, **kwargs)
    except ExperimentNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    except (ExperimentConflict, ExperimentRefused) as exc:
        raise HTTPException(409, str(exc)) from exc


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def build_router() -> APIRouter:
    router = APIRouter(tags=["experiments"])
    api = APIRouter(
        prefix="/v1/experiments", dependencies=[Depends(require_admin)], responses=RESPONSES
    )

    @api.get("", summary="All experiments")
    def list_experiments(runtime: ExperimentsDep) -> list[dict[str, Any]]:
        return [s.to_dict() for s in _call(_store(runtime).list)]

    @api.post("", status_code=201, summary="Create a draft experiment")
    def create(body: Experiment, runtime: ExperimentsDep, author: Author = "api") -> dict[str, Any]:
        return _call(_store(runtime).create, body, author).to_dict()

    @api.get("/{name}", summary="One experiment")
    def get(name: str, runtime: ExperimentsDep) -> dict[str, Any]:
        return _call(_store(runtime).get, name).to_dict()

    @api.put("/{name}", summary="Edit a draft (base_version required)")
    def update(
        name: str,
        body: Experiment,
        runtime: ExperimentsDep,
        base_version: BaseVersion = None,
        author: Author = "api",
    ) -> dict[str, Any]:
        if body.name != name:
            raise HTTPException(
                422, f"the body's name {body.name!r} differs from the URL's {name!r}"
            )
        if base_version is None:
            raise HTTPException(422, "base_version is required: the version your edit is based on")
        return _call(_store(runtime).update, body, base_version, author).to_dict()

    @api.post("/{name}/start", summary="Start (refused over the memory budget)")
    async def start(
        name: str, runtime: ExperimentsDep, base_version: BaseVersion = None, author: Author = "api"
    ) -> dict[str, Any]:
        stored = await run_in_threadpool(
            _call,
            _store(runtime).start,
            name,
            author,
            base_version=base_version,
            check=runtime.check_budget,
        )
        await run_in_threadpool(runtime.refresh)
        return stored.to_dict()

    @api.post("/{name}/stop", summary="Stop")
    async def stop(
        name: str, runtime: ExperimentsDep, base_version: BaseVersion = None, author: Author = "api"
    ) -> dict[str, Any]:
        stored = await run_in_threadpool(
            _call, _store(runtime).stop, name, author, base_version=base_version
        )
        await run_in_threadpool(runtime.refresh)
        return stored.to_dict()

    @api.get("/{name}/history", summary="Every version, newest first")
    def history(name: str, runtime: ExperimentsDep) -> list[dict[str, Any]]:
        return [
            {
                "version": h.version,
                "action": h.action,
                "author": h.author,
                "at": h.at.isoformat(),
                "document": h.document,
            }
            for h in _call(_store(runtime).history, name)
        ]

    @api.get("/{name}/report", summary="Per-variant metrics, differences to control, SRM check")
    def experiment_report(
        name: str,
        runtime: ExperimentsDep,
        settings: SettingsDep,
        events: EventLogDep,
        model: CurrentModel,
        recorder: ImpressionsDep,
        request: Request,
        minimum_effect: Annotated[
            float, Query(gt=0, le=10, description="Relative effect for 'units needed'.")
        ] = 0.05,
    ) -> dict[str, Any]:
        exp = _call(_store(runtime).get, name).experiment
        if recorder.recorder is not None:
            recorder.recorder.flush()  # this process's latest answers count too
        impressions = ImpressionLog(settings.resolved_database_url)
        try:
            imp = impressions.read_frame(experiment=name)
        finally:
            impressions.dispose()
        prices = (
            dict(zip(model.catalog.skus, model.prices, strict=False)) if model is not None else None
        )
        rep = report(
            exp,
            imp,
            events.read_frame(),
            EventContextLog(events.engine).read_frame(),
            window_hours=settings.attribution_window_hours,
            prices=prices,
            minimum_effect=minimum_effect,
        )
        return rep.to_dict()

    router.include_router(api)

    @router.get("/admin/experiments", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        html = _env().get_template("experiments.html").render(api="/v1/experiments")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @router.get("/admin/experiments.js", include_in_schema=False)
    def page_script() -> Response:
        # a file of its own: the admin pages' Content-Security-Policy allows no inline script
        return Response(
            (TEMPLATES / "experiments.js").read_bytes(),
            media_type="text/javascript",
            headers={"Cache-Control": "no-store"},
        )

    return router
