"""App-wide answers for the rules' exceptions, so no route maps them by hand:

* ``RuleValidationError`` -> 422 listing every bad field by path;
* ``RuleNotFound`` -> 404;
* ``RuleConflict`` -> 409 with the ``current`` stored rule and its ETag.

``install_rule_error_handlers(app)`` is called by ``install_rules``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from recsys.rules.model import RuleValidationError
from serving.errors import rule_input_error_response
from serving.rules.store import RuleConflict, RuleNotFound


async def rule_invalid_handler(request: Request, exc: Exception) -> JSONResponse:
    """422 in the service's one error shape (``serving.errors``), every bad field by path."""
    return await rule_input_error_response(request, exc)


async def rule_not_found_handler(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, 404)


async def rule_conflict_handler(request: Request, exc: Exception) -> JSONResponse:
    from recsys.controls import Control
    from serving.rules.service import control_out, rule_out

    assert isinstance(exc, RuleConflict)
    runtime = request.app.state.rules_runtime
    current = None
    if exc.current is not None:
        shown = control_out if isinstance(exc.current.rule, Control) else rule_out
        current = shown(runtime, exc.current).model_dump(mode="json")
    headers = {"ETag": f'"{exc.current.version}"'} if exc.current else {}
    return JSONResponse({"detail": str(exc), "current": current}, status_code=409, headers=headers)


def install_rule_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RuleValidationError, rule_invalid_handler)
    app.add_exception_handler(RuleNotFound, rule_not_found_handler)
    app.add_exception_handler(RuleConflict, rule_conflict_handler)
