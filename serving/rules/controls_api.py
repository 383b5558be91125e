"""The answer controls API: ``/v1/controls...`` (merchandiser key). Pins, boosts, buries and
hides on the model's own list, stored, versioned and audited by the rules' store machinery
(``ControlStore``): writes name the version they were based on, a stale one gets 409, every
version is kept with who/when/what changed, and any version can be made current again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse

from recsys.controls import (
    Control,
    check_control_against_catalog,
    dump_controls_yaml,
    parse_controls_yaml,
)
from recsys.rules.model import FieldError, RuleValidationError
from serving.auth import require_merchandiser
from serving.deps import AuthorDep, EffectReaderDep, RulesRuntimeDep
from serving.rules import schemas as s
from serving.rules import service
from serving.rules.api import (
    AUTH_RESPONSES,
    CONFLICT,
    EFFECT_DOC,
    INVALID,
    MAX_IMPORT_BYTES,
    NOT_FOUND,
    EffectWindowDep,
    IfMatchHeader,
    _parse_version,
    _require_version,
    require_stored,
)
from serving.rules.runtime import RulesRuntime
from serving.rules.store import StoredRule

router = APIRouter(
    prefix="/v1/controls",
    tags=["controls"],
    dependencies=[Depends(require_merchandiser)],
    responses=AUTH_RESPONSES,
)


def _written(
    runtime: RulesRuntime, stored: StoredRule[Control], response: Response | None = None
) -> s.ControlOut:
    runtime.refresh()
    if response is not None:
        response.headers["ETag"] = f'"{stored.version}"'
    return service.control_out(runtime, stored)


@router.get("", response_model=s.ControlList, summary="List answer controls")
def list_controls(
    runtime: RulesRuntimeDep,
    window: EffectWindowDep,
    effects: EffectReaderDep,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in id, name, summary, tags.")
    ] = None,
    effect: Annotated[
        bool, Query(description="Add each control's effect over the window (from/to or days).")
    ] = False,
) -> s.ControlList:
    words = (q or "").lower().split()
    out = []
    for st in runtime.controls_store.list():
        c = st.rule
        text = " ".join(
            [c.id, c.name, c.description, " ".join(c.tags), service.control_summary(c)]
        ).lower()
        if all(w in text for w in words):
            out.append(service.control_out(runtime, st))
    out.sort(key=lambda o: (-o.control["priority"], o.id))
    if effect:
        found = effects("control", window, [o.id for o in out])
        for o in out:
            o.effect = found[o.id]
    return s.ControlList(controls=out, total=len(out))


@router.post(
    "",
    status_code=201,
    response_model=s.ControlOut,
    summary="Create a control",
    responses={**INVALID, **CONFLICT},
)
def create_control(
    runtime: RulesRuntimeDep,
    response: Response,
    author: AuthorDep,
    document: Annotated[dict[str, Any], Body(openapi_examples=s.CONTROL_EXAMPLES)],
) -> s.ControlOut:
    control = service.validated_control(
        runtime, {k: v for k, v in document.items() if k != "version"}
    )
    stored = runtime.controls_store.create(control, author)
    response.headers["Location"] = f"/v1/controls/{control.id}"
    return _written(runtime, stored, response)


@router.get("/export", response_class=PlainTextResponse, summary="All controls as YAML")
def export_controls(runtime: RulesRuntimeDep) -> PlainTextResponse:
    return PlainTextResponse(
        dump_controls_yaml([st.rule for st in runtime.controls_store.list()]),
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="controls.yaml"'},
    )


@router.post(
    "/import",
    response_model=s.ImportOut,
    summary="Load controls from YAML (all or nothing)",
    responses=INVALID,
)
async def import_controls(
    runtime: RulesRuntimeDep,
    request: Request,
    author: AuthorDep,
    mode: Annotated[str, Query(pattern="^(merge|replace)$")] = "merge",
    dry_run: Annotated[bool, Query()] = False,
) -> s.ImportOut:
    raw = await request.body()
    if len(raw) > MAX_IMPORT_BYTES:
        raise HTTPException(413, f"import larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RuleValidationError([FieldError("", "the body must be UTF-8 YAML text")]) from None
    view = runtime.catalog_view()
    controls = parse_controls_yaml(
        text, (lambda c: check_control_against_catalog(c, view.catalog)) if view else None
    )
    if dry_run:
        return service.import_diff(
            {st.rule.id: st.rule for st in runtime.controls_store.list()}, controls, mode
        )
    result = runtime.controls_store.import_rules(controls, author, mode=mode)  # type: ignore[arg-type]
    runtime.refresh()
    return s.ImportOut(dry_run=False, **result.__dict__)


@router.get(
    "/{control_id}/effect",
    response_model=s.EffectOut,
    summary="A control's effect: impressions, attach rate, revenue over a window",
    description=EFFECT_DOC,
    responses={**NOT_FOUND, **INVALID},
)
def control_effect(
    runtime: RulesRuntimeDep, control_id: str, window: EffectWindowDep, effects: EffectReaderDep
) -> s.EffectOut:
    require_stored(runtime.controls_store, control_id, "/v1/controls")
    return effects("control", window, [control_id])[control_id]


@router.get(
    "/{control_id}", response_model=s.ControlOut, summary="One control", responses=NOT_FOUND
)
def get_control(runtime: RulesRuntimeDep, control_id: str, response: Response) -> s.ControlOut:
    stored = runtime.controls_store.get(control_id)
    response.headers["ETag"] = f'"{stored.version}"'
    return service.control_out(runtime, stored)


@router.put(
    "/{control_id}",
    response_model=s.ControlOut,
    summary="Replace a control (send its version)",
    responses={**INVALID, **CONFLICT, **NOT_FOUND, 428: {"description": "No version sent."}},
)
def put_control(
    runtime: RulesRuntimeDep,
    control_id: str,
    response: Response,
    author: AuthorDep,
    document: Annotated[dict[str, Any], Body(openapi_examples=s.CONTROL_EXAMPLES)],
    if_match: IfMatchHeader = None,
) -> s.ControlOut:
    doc = dict(document)
    base = _require_version(if_match, doc.pop("version", None))
    doc.setdefault("id", control_id)
    if doc["id"] != control_id:
        raise RuleValidationError(
            [FieldError("id", f"must equal the id in the URL ({control_id!r})")]
        )
    control = service.validated_control(runtime, doc)
    return _written(runtime, runtime.controls_store.update(control, base, author), response)


@router.delete(
    "/{control_id}",
    response_model=s.DeletedOut,
    summary="Delete a control (kept in history)",
    responses={**CONFLICT, **NOT_FOUND},
)
def delete_control(
    runtime: RulesRuntimeDep,
    control_id: str,
    author: AuthorDep,
    if_match: IfMatchHeader = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> s.DeletedOut:
    new_version = runtime.controls_store.delete(
        control_id, _require_version(if_match, version), author
    )
    runtime.refresh()
    return s.DeletedOut(id=control_id, version=new_version)


@router.post(
    "/{control_id}/enable",
    response_model=s.ControlOut,
    summary="Enable a control",
    responses={**CONFLICT, **NOT_FOUND},
)
def enable_control(
    runtime: RulesRuntimeDep,
    control_id: str,
    author: AuthorDep,
    if_match: IfMatchHeader = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> s.ControlOut:
    stored = runtime.controls_store.set_enabled(
        control_id, True, author, _parse_version(if_match, version)
    )
    return _written(runtime, stored)


@router.post(
    "/{control_id}/disable",
    response_model=s.ControlOut,
    summary="Disable a control",
    responses={**CONFLICT, **NOT_FOUND},
)
def disable_control(
    runtime: RulesRuntimeDep,
    control_id: str,
    author: AuthorDep,
    if_match: IfMatchHeader = None,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> s.ControlOut:
    stored = runtime.controls_store.set_enabled(
        control_id, False, author, _parse_version(if_match, version)
    )
    return _written(runtime, stored)


@router.get(
    "/{control_id}/history",
    response_model=s.HistoryOut,
    summary="Every version of a control",
    responses=NOT_FOUND,
)
def control_history(runtime: RulesRuntimeDep, control_id: str) -> s.HistoryOut:
    versions = runtime.controls_store.history(control_id)
    current = versions[0].version if versions and versions[0].document is not None else None
    return s.HistoryOut(
        id=control_id, current_version=current, versions=service.history_out(versions)
    )


@router.post(
    "/{control_id}/rollback",
    response_model=s.ControlOut,
    summary="Make an old version current again",
    responses={**CONFLICT, **NOT_FOUND},
)
def rollback_control(
    runtime: RulesRuntimeDep, control_id: str, body: s.RollbackIn, author: AuthorDep
) -> s.ControlOut:
    try:
        stored = runtime.controls_store.rollback(control_id, body.to_version, body.version, author)
    except RuleValidationError:
        raise
    except ValueError as exc:
        raise RuleValidationError([FieldError("to_version", str(exc))]) from None
    return _written(runtime, stored)
