"""Bearer-key guards for admin and merchandiser routes.

Keys come from settings; a key that is not configured disables its routes (503 with what to
set) instead of leaving them open. Comparison is constant-time.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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


# Declared only (auto_error=False): they put the security schemes in the OpenAPI document;
# ``check_bearer`` does the checking (and its 401/403/503 say what to send or set).
_ADMIN_SCHEME = HTTPBearer(
    auto_error=False, scheme_name="adminKey", description="`Bearer <RECSYS_ADMIN_KEY>`"
)
_MERCH_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="merchandiserKey",
    description="`Bearer <RECSYS_MERCHANDISER_KEY>`",
)
Credentials = HTTPAuthorizationCredentials | None


def require_admin(
    request: Request, _key: Annotated[Credentials, Depends(_ADMIN_SCHEME)] = None
) -> None:
    """FastAPI dependency for /admin routes."""
    check_bearer(request, "admin")


def require_merchandiser(
    request: Request, _key: Annotated[Credentials, Depends(_MERCH_SCHEME)] = None
) -> None:
    """FastAPI dependency for rule writes."""
    check_bearer(request, "merchandiser")
