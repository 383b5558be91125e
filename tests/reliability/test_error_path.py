"""Issue 13 item 9: an unexpected exception gave a 503 but was re-raised, so uvicorn closed the
keep-alive connection (the client's next request on it failed), the 503 had no
``X-Request-ID`` and the metrics counted a 500. Against a real uvicorn server."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from serving.app import create_app


class _Boom(RuntimeError):
    pass


@pytest.fixture
def server(settings_for) -> Iterator[tuple[str, int]]:  # noqa: ANN001
    app = create_app(settings_for())

    @app.get("/boom", include_in_schema=False)
    def boom() -> None:  # stands for any bug deep in a handler
        raise _Boom("a bug")

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield "127.0.0.1", port
    srv.should_exit = True
    thread.join(10)


def test_unexpected_error_is_a_503_that_keeps_the_connection(server) -> None:  # noqa: ANN001
    conn = http.client.HTTPConnection(*server, timeout=10)
    conn.request("GET", "/boom", headers={"X-Request-ID": "req-boom-1"})
    r = conn.getresponse()
    body = r.read()
    assert r.status == 503 and r.getheader("Retry-After") == "1"
    assert r.getheader("X-Request-ID") == "req-boom-1" and b"req-boom-1" in body
    assert (r.getheader("Connection") or "").lower() != "close"
    # the next request on the same keep-alive connection works
    conn.request("GET", "/healthz")
    r2 = conn.getresponse()
    assert r2.status == 200 and r2.read()
    conn.request("GET", "/metrics")
    metrics = conn.getresponse().read().decode()
    conn.close()
    assert 'recsys_http_requests_total{endpoint="/boom",method="GET",status="503"} 1.0' in metrics
    assert 'endpoint="/boom",method="GET",status="500"' not in metrics
