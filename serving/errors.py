"""Error answers that say what to fix.

FastAPI's default 422 lists pydantic internals; clients need "which field, what is wrong, what
is allowed". Every 4xx body has ``detail`` (one readable sentence) and, for validation
problems, ``errors`` (one entry per field). Unexpected exceptions become a logged 503 with the
request id (the model or store misbehaved; the client may retry) instead of an opaque 500;
``serving.middleware`` does that, so the keep-alive connection stays open and metrics count 503.
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
        return (
            f"request body is not valid JSON (at character {pos}{': ' + reason if reason else ''})"
        )
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


async def rule_input_error_response(request: Request, exc: Exception) -> JSONResponse:
    """Rule 422s in the service's one shape: ``errors`` of ``{field, message, type}`` (``path``
    kept as an alias of ``field`` for clients written against the rules API's first shape)."""
    problems = list(getattr(exc, "errors", []) or [])
    items = [
        {"field": p.path or "body", "message": p.message, "type": "value_error", "path": p.path}
        for p in problems
    ]
    detail = "; ".join(str(p) for p in problems[:5])
    if len(items) > 5:
        detail += f"; and {len(items) - 5} more"
    return JSONResponse({"detail": detail or "invalid rule", "errors": items}, status_code=422)


ERROR_BODY_SCHEMA = {
    "title": "Problem",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "One readable sentence."},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def document_error_shape(app: FastAPI) -> None:
    """FastAPI documents every 422 as its own ``HTTPValidationError`` (a list of pydantic
    errors); the service answers ``{detail, errors: [{field, message, type}]}``. Rewrite that
    one component so the document says what every route really returns."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        components = schema.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in components:
            components["HTTPValidationError"] = ERROR_BODY_SCHEMA
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Validation errors here; unexpected exceptions become a 503 in ``ServingMiddleware``
    (an app-level ``Exception`` handler runs in Starlette's outermost middleware, which
    re-raises: the connection was closed and the metrics counted a 500)."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]  # starlette types handlers by Exception


def limit_error(field: str, message: str) -> RequestValidationError:
    """A 422 in the same shape as schema errors, for limits that come from settings."""
    loc = ("body", *[int(p) if p.isdigit() else p for p in field.split(".")])
    return RequestValidationError([{"loc": loc, "msg": message, "type": "limit_exceeded"}])
