"""``recsys serve`` and ``recsys events export``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from recsys.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the recommendation API (uvicorn)",
        description="Serve the API. By default it serves models:/<RECSYS_MODEL_NAME>@"
        "<RECSYS_MODEL_ALIAS> from MLFLOW_TRACKING_URI (embedded: <data_dir>/mlflow.db) and "
        "follows the alias. Prints a ready-to-paste curl request once ready.",
    )
    serve.add_argument("--host", help="bind address (RECSYS_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (RECSYS_PORT, default 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        help="processes (RECSYS_WORKERS; default: one per available core, each single-threaded)",
    )
    serve.add_argument(
        "--model-uri", help="bundle folder, runs:/ or models:/ URI (RECSYS_MODEL_URI)"
    )
    serve.add_argument(
        "--sync-handlers",
        action="store_true",
        help="run recommend handlers in the thread pool (def) instead of the event loop",
    )
    serve.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the launching process dies (what `make run` uses: stopping make by its "
        "PID then stops the server too; Linux only)",
    )
    serve.set_defaults(handler=serve_command)

    events = subparsers.add_parser("events", help="the event log")
    events_sub = events.add_subparsers(dest="events_command", metavar="ACTION")
    export = events_sub.add_parser(
        "export", help="write accepted events as an interactions file for the next training"
    )
    export.add_argument("--out", required=True, type=Path, help="FILE.parquet (or .csv)")
    export.add_argument("--since", help="only events at or after this ISO 8601 time")
    export.set_defaults(handler=export_command)
    events.set_defaults(handler=lambda args: (events.print_help(), 2)[1])


def export_command(args: argparse.Namespace) -> int:
    from datetime import datetime

    from feature_store.event_log import EventLog
    from recsys.timestamps import to_utc

    settings = Settings()
    since = None
    if args.since:
        try:
            since = to_utc(datetime.fromisoformat(args.since.replace("Z", "+00:00")))
        except ValueError as exc:
            print(f"error: --since {args.since!r}: {exc} (give an ISO 8601 time)", file=sys.stderr)
            return 2
    event_log = EventLog(settings.resolved_database_url)
    try:
        n = event_log.export(args.out, since)
    finally:
        event_log.dispose()
    print(f"wrote {n} events to {args.out}")
    return 0


def serve_command(args: argparse.Namespace) -> int:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # one log line per model download, not a progress bar per file
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # the workers build their settings from the environment: pass the flags through it
    overrides = {
        "RECSYS_HOST": args.host,
        "RECSYS_PORT": args.port,
        "RECSYS_WORKERS": args.workers,
        "RECSYS_MODEL_URI": args.model_uri,
    }
    for key, value in overrides.items():
        if value is not None:
            os.environ[key] = str(value)
    if args.sync_handlers:
        os.environ["RECSYS_SERVING_SYNC_HANDLERS"] = "1"
    settings = Settings()
    workers = settings.workers or available_cores()
    if workers > 1 and not settings.redis_url:
        log.warning(
            "%d workers with in-process online state: each worker sees only the events it "
            "received (recent items, style affinity, event popularity); set RECSYS_REDIS_URL to "
            "share them, or --workers 1",
            workers,
        )
    prometheus_dir = None  # ours to delete on the way out (not one the operator set)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        prometheus_dir = tempfile.mkdtemp(prefix="recsys-prometheus-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = prometheus_dir
    if getattr(args, "exit_with_parent", False):
        _exit_with_parent()
    import uvicorn

    threading.Thread(
        target=announce_when_ready, args=(settings.host, settings.port), daemon=True
    ).start()
    try:
        uvicorn.run(
            "serving.app:app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="info",
            access_log=False,
        )
    finally:
        if prometheus_dir is not None:
            shutil.rmtree(prometheus_dir, ignore_errors=True)
    return 0


def available_cores() -> int:
    """CPUs this process may run on (affinity / cpuset aware): the default worker count. Each
    worker runs one request at a time on one thread (OMP/OpenBLAS/faiss/LightGBM at 1), so
    one worker per core uses the machine without oversubscribing it."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _exit_with_parent() -> None:
    """Ask Linux to send us SIGTERM (uvicorn's graceful stop) when our parent dies."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        log.warning("--exit-with-parent is not supported on this platform")
        return
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)


def _get_json(url: str, timeout: float = 2.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - our own server
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def example_basket(base: str) -> list[str]:
    """Two SKUs of the loaded catalog for the example: a grey concrete-look porcelain tile and a
    paintable concrete-look wallpaper when the catalog has them (relevance search may list a
    plain tile first otherwise), else its first products."""
    skus: list[str] = []
    # the README's journey: a concrete-look tile and a paintable concrete-look wallpaper (loft)
    queries = (
        "grey porcelain stoneware tile concrete look",
        "grey porcelain tile",
        "porcelain tile",
        "paintable non-woven wallpaper concrete look",
        "paintable wallpaper",
        "wallpaper",
    )
    for query in queries:
        if len(skus) >= 2 or (skus and "wallpaper" not in query):
            continue
        _, found = _get_json(
            f"{base}/v1/products?" + urllib.parse.urlencode({"q": query, "limit": 1})
        )
        for item in found.get("items", []):
            if item["sku"] not in skus:
                skus.append(item["sku"])
    if len(skus) < 2:
        _, found = _get_json(f"{base}/v1/products?limit=2")
        skus += [i["sku"] for i in found.get("items", []) if i["sku"] not in skus]
    return skus[:2]


def checkout_example_sku(base: str) -> str | None:
    """A wall paint of the loaded catalog for the checkout example (None if it has none)."""
    _, found = _get_json(
        f"{base}/v1/products?" + urllib.parse.urlencode({"category": "wall-paint", "limit": 1})
    )
    items = found.get("items", [])
    return str(items[0]["sku"]) if items else None


def curl_example(base: str, skus: list[str], page: str = "cart") -> str:
    body = {"basket": [{"sku": s, "quantity": 1} for s in skus], "page": page, "k": 5}
    return (
        f"curl -s -X POST {base}/v1/recommendations -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body))} | python3 -m json.tool"
    )


def announce_when_ready(host: str, port: int, timeout: float = 600.0) -> None:
    """Wait for /readyz, then print the example request (or say why it is not ready)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            status, last = _get_json(f"{base}/readyz")
        except OSError:
            continue
        if status == 200:
            skus = example_basket(base)
            paint = checkout_example_sku(base)
            checkout = (
                f"a checkout with wall paint (see the accessories slots):\n"
                f"  {curl_example(base, [paint], 'checkout')}\n"
                if paint
                else ""
            )
            print(
                f"\nready: model {last.get('model_version')} on {base} (docs: {base}/docs)\n"
                f"try a cart (see the inferred style and the items that complete it):\n"
                f"  {curl_example(base, skus)}\n{checkout}",
                flush=True,
            )
            return
        if not last.get("model_loaded") and time.monotonic() > deadline - timeout + 20:
            print(
                f"\nserving WITHOUT a model on {base} (answers are degraded): "
                f"{'; '.join(last.get('problems', []))}\n"
                "train one with `recsys train ... --promote` or set RECSYS_MODEL_URI; the "
                "server picks it up without a restart.\n",
                flush=True,
            )
            return
