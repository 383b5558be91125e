"""Issue 13 item 10 (the smaller faults), one test each: no Infinity stored, no Host-header
reflection, security headers on pages, one 4xx body shape, security schemes in the OpenAPI
document, Swagger UI without a CDN, and a `make run`-style server that neither outlives its
launcher nor leaves Prometheus folders behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from serving.app import create_app

MERCH = {"Authorization": "Bearer test-merch-key"}
RULE = {
    "id": "inf-test",
    "name": "n",
    "trigger": {"categories": ["tile"]},
    "suggest": {"categories": ["grout"]},
}


@pytest.fixture
def client(settings_for):  # noqa: ANN001, ANN201
    with TestClient(create_app(settings_for())) as c:
        yield c


def test_infinite_numbers_are_refused_not_stored_as_infinity(client) -> None:  # noqa: ANN001
    body = (
        '{"id": "inf-test", "name": "n", "trigger": {"categories": ["tile"]}, '
        '"suggest": {"categories": ["grout"], "constraints": {"max_price": 1e400}}}'
    )
    r = client.post(
        "/v1/rules?check_catalog=false",
        content=body,
        headers={**MERCH, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and "max_price" in r.text, r.text
    assert client.get("/v1/rules/inf-test", headers=MERCH).status_code == 404
    r = client.post(
        "/v1/recommendations",
        content='{"basket": [], "filters": {"max_price": 1e400}}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "filters.max_price"


def test_trailing_slash_does_not_redirect_to_the_host_header(client) -> None:  # noqa: ANN001
    for path in ("/v1/rules/", "/admin/model/", "/v1/events/"):
        r = client.get(path, headers={**MERCH, "Host": "evil.example"}, follow_redirects=False)
        assert r.status_code not in (301, 302, 307, 308), (path, r.headers)
        assert "evil.example" not in r.headers.get("location", "")


def test_pages_carry_security_headers(client) -> None:  # noqa: ANN001
    for path in ("/admin/rules", "/docs"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self';" in client.get("/admin/rules").headers["content-security-policy"]
    assert client.get("/healthz").headers["x-content-type-options"] == "nosniff"


def test_rules_422_uses_the_service_error_shape(client) -> None:  # noqa: ANN001
    r = client.post(
        "/v1/rules", json={**RULE, "suggest": {"categories": ["Not A Slug"]}}, headers=MERCH
    )
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert errors and all({"field", "message", "type"} <= set(e) for e in errors)
    assert errors[0]["field"].startswith("suggest.categories")
    schema = client.post("/v1/events", json={"events": [{"event_id": "x"}]}).json()["errors"][0]
    assert {"field", "message", "type"} <= set(schema)


def test_openapi_declares_the_security_schemes(client) -> None:  # noqa: ANN001
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert (
        schemes["adminKey"]["scheme"] == "bearer"
        and schemes["merchandiserKey"]["scheme"] == "bearer"
    )
    assert spec["paths"]["/admin/reload"]["post"]["security"] == [{"adminKey": []}]
    assert spec["paths"]["/v1/rules/import"]["post"]["security"] == [{"merchandiserKey": []}]
    assert "security" not in spec["paths"]["/v1/recommendations"]["post"]


def test_swagger_ui_is_served_without_a_cdn(client) -> None:  # noqa: ANN001
    page = client.get("/docs").text
    assert "cdn" not in page.lower() and "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in page
        r = client.get(f"/docs/assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000


@pytest.mark.slow
def test_server_started_like_make_run_stops_with_its_launcher_and_cleans_up(
    bundle_dir: Path,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    port = _free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_MODEL_URI": str(bundle_dir),
        "RECSYS_RELOAD_POLL_SECONDS": "0",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    serve = [
        sys.executable,
        "-m",
        "recsys.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        "2",
        "--exit-with-parent",
    ]
    # the launcher stands for make: it runs the server as its child and is stopped by its PID
    launcher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
            *serve,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("recsys serve did not start")
        assert list(tmp.glob("recsys-prometheus-*")), "two workers use a Prometheus folder"
        launcher.send_signal(signal.SIGTERM)  # `kill <pid of make run>`
        launcher.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _listening(port):
            time.sleep(0.3)
        assert not _listening(port), "the server outlived its launcher"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and list(tmp.glob("recsys-prometheus-*")):
            time.sleep(0.2)
        assert not list(tmp.glob("recsys-prometheus-*")), "Prometheus folder left behind"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False
