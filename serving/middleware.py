"""One pure-ASGI middleware for every request: request id, start time (the latency budget
counts from here; ``Server-Timing: app;dur=<ms>`` reports it back), body size limit (413), a bound on requests in flight (503 + Retry-After
instead of an unbounded queue), and per-endpoint metrics.

Pure ASGI rather than ``BaseHTTPMiddleware``: it adds microseconds, not a task per request.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.metrics import ServingMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_NEVER_SHED = ("/healthz", "/readyz", "/metrics")
# on every answer: no MIME sniffing, no URL (with ids) leaked in Referer
_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
# pages (admin page, API docs): only this origin's scripts, never framed (clickjacking)
_PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI/ReDoc start from one inline script; their assets are served from this origin
_DOCS_CSP = _PAGE_CSP.replace(b"script-src 'self'", b"script-src 'self' 'unsafe-inline'")


def security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """Headers every answer gets, plus CSP and framing rules on pages."""
    if path.startswith("/admin"):
        return (*_ALWAYS, (b"content-security-policy", _PAGE_CSP), (b"x-frame-options", b"DENY"))
    if path.startswith(("/docs", "/redoc")):
        return (*_ALWAYS, (b"content-security-policy", _DOCS_CSP), (b"x-frame-options", b"DENY"))
    return _ALWAYS


async def _send_json(send: Send, status: int, body: dict, headers: list | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ServingMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        metrics: ServingMetrics,
        max_in_flight: int = 512,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["t0"] = t0
        state["request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        status_box = [500]
        path = scope.get("path", "")
        extra = security_headers(path)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                took = f"app;dur={(time.perf_counter() - t0) * 1000:.3f}".encode()
                message["headers"] = [
                    *message.get("headers", []),
                    rid_header,
                    (b"server-timing", took),
                    *extra,
                ]
            await send(message)

        try:
            if self.in_flight >= self.max_in_flight and path not in _NEVER_SHED:
                self.metrics.shed.inc()
                await _send_json(
                    send_wrapper,
                    503,
                    {"detail": "server busy: too many requests in flight, retry shortly"},
                    [(b"retry-after", b"1")],
                )
                return
            too_big = await self._body_too_big(scope, headers)
            if too_big is None:
                await self._buffered(scope, receive, send_wrapper)
                return
            if too_big:
                await self._refuse_413(send_wrapper)
                return
            self.in_flight += 1
            try:
                await self._guarded(scope, receive, send_wrapper, rid)
            finally:
                self.in_flight -= 1
        finally:
            self._observe(scope, status_box[0], time.perf_counter() - t0)

    async def _body_too_big(self, scope: Scope, headers: dict) -> bool | None:
        """True/False from Content-Length; None when the body must be counted (chunked)."""
        length = headers.get(b"content-length")
        if length is not None:
            try:
                return int(length) > self.max_body_bytes
            except ValueError:
                return True
        if scope.get("method") in ("POST", "PUT", "PATCH") and b"transfer-encoding" in headers:
            return None
        return False

    async def _refuse_413(self, send: Send) -> None:
        await _send_json(
            send,
            413,
            {
                "detail": f"request body too large: at most {self.max_body_bytes} bytes "
                "(RECSYS_MAX_BODY_BYTES); send fewer items or split the batch"
            },
        )

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a chunked body up to the limit, then replay it to the app in one message."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse_413(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        self.in_flight += 1
        try:
            await self._guarded(scope, replay, send, scope["state"]["request_id"])
        finally:
            self.in_flight -= 1

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        """Run the app; an unexpected exception becomes a logged 503 + Retry-After carrying
        ``X-Request-ID`` and is *not* re-raised (re-raising made uvicorn close the keep-alive
        connection and Starlette count a 500)."""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:  # noqa: BLE001 - the service answers; the log has the traceback
            log.exception("unexpected error in %s (request %s)", scope.get("path", ""), rid)
            if started:  # too late for a clean answer: the client sees a cut response
                return
            await _send_json(
                send,
                503,
                {"detail": f"temporary failure, retry later (request id {rid})"},
                [(b"retry-after", b"1")],
            )

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.requests.labels(endpoint, method, str(status)).inc()
        self.metrics.latency.labels(endpoint, method).observe(seconds)
