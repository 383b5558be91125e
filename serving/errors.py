"""Error answers that say what to fix.

FastAPI's default 422 lists pydantic internals; clients need "which field, what is wrong, what
is allowed". Every 4xx body has ``detail`` (one readable sentence) and, for validation
problems, ``errors`` (one entry per field). Unexpected exceptions become a logged 503 with the
request id (the model or store misbehaved; the client may retry) instead of an opaque 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)


def _field(loc: tuple | list) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        where, parts = parts[0], parts[1:]
    else:
        where = "body"
    name = ""
    for p in parts:
        name += f"[{p}]" if p.isdigit() else (f".{p}" if name else p)
    return name or where


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    loc = err.get("loc", ())
    msg = str(err.get("msg", "invalid"))
    if kind == "json_invalid":
        pos = loc[1] if len(loc) > 1 else "?"
        reason = (err.get("ctx") or {}).get("error", "")
        return f"request body is not valid JSON (at character {pos}{': ' + reason if reason else ''})"
    if kind == "extra_forbidden":
        return f"unknown field '{_field(loc)}': remove it (see the schema at /docs)"
    if kind == "missing":
        return f"{_field(loc)}: required field is missing"
    if kind == "model_attributes_type" or kind == "dict_type":
        return f"{_field(loc)}: expected a JSON object"
    return f"{_field(loc)}: {msg}"


def validation_payload(errors: list[dict[str, Any]]) -> dict[str, Any]:
    items = [
        {"field": _field(e.get("loc", ())), "message": _message(e), "type": e.get("type", "")}
        for e in errors
    ]
    detail = "; ".join(i["message"] for i in items[:5])
    if len(items) > 5:
        detail += f"; and {len(items) - 5} more"
    return {"detail": detail or "invalid request", "errors": items}


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(validation_payload(list(exc.errors())), status_code=422)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    rid = request.scope.get("state", {}).get("request_id", "?")
    log.exception("unexpected error in %s (request %s)", request.url.path, rid)
    return JSONResponse(
        {"detail": f"temporary failure, retry later (request id {rid})"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]  # starlette types handlers by Exception
    app.add_exception_handler(Exception, _on_unexpected)


def limit_error(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as schema errors, for limits that come from settings."""
    loc = ("body", *[int(p) if p.isdigit() else p for p in field.split(".")])
    return RequestValidationError([{"loc": loc, "msg": message, "type": "limit_exceeded"}])
