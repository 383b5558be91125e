"""Bearer-key guards for admin and merchandiser routes.

Keys come from settings; a key that is not configured disables its routes (503 with what to
set) instead of leaving them open. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
from typing import Literal

from fastapi import HTTPException, Request, status

Role = Literal["admin", "merchandiser"]
_ENV = {"admin": "RECSYS_ADMIN_KEY", "merchandiser": "RECSYS_MERCHANDISER_KEY"}


def check_bearer(request: Request, role: Role) -> None:
    """Raise 401/403/503 unless the request carries the configured key for ``role``."""
    settings = request.app.state.settings
    expected: str | None = getattr(settings, f"{role}_key")
    if not expected:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"{role} routes are disabled: set {_ENV[role]} on the server to enable them",
        )
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=f"missing credential: send 'Authorization: Bearer <{role} key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"wrong {role} key")


def require_admin(request: Request) -> None:
    """FastAPI dependency for /admin routes."""
    check_bearer(request, "admin")


def require_merchandiser(request: Request) -> None:
    """FastAPI dependency for rule writes."""
    check_bearer(request, "merchandiser")
