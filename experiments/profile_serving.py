"""Server CPU per recommendation inside one process, without a network or a load generator.

    python -m experiments.profile_serving --world sample                 # CPU ms per request
    python -m experiments.profile_serving --world 50k --profile out.html # + pyinstrument

Builds the real app (``serving.app.create_app``, the bench's bundle from
``data/load/<world>/``, the same settings ``bench_serving`` gives ``recsys serve``), runs its
lifespan, and sends the bench's request bodies straight into the ASGI app (no HTTP client, no
socket): what is left is the service's own work per request; the floor app
(``experiments/floor_app.py``) is measured the same way, in the same process, for a ratio. Also times the pipeline alone
(``Recommender.recommend``), its steps one by one (each once per request, in pipeline order),
and the pipeline's own ``timings_ms``. Figures are the lowest of ``--passes`` passes over the
requests, since a shared machine only ever adds CPU time. A tool for finding where the
time goes between two runs of ``bench_serving``, whose ratio to the floor is the figure that
counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

from experiments.load_test import prepare  # noqa: E402

STAGES = ("prepare_style", "candidates", "features", "ranker", "assemble", "total")


async def _call(app: Any, body: bytes) -> tuple[int, bytes]:  # noqa: ANN401 - an ASGI app
    """One POST /v1/recommendations straight into the ASGI app."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/recommendations",
        "raw_path": b"/v1/recommendations",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def _app_passes(
    bundle: Path, bodies: list[bytes], passes: int, profile: Path | None, **overrides: Any
) -> dict:
    from recsys.settings import Settings
    from serving.app import create_app

    settings = Settings(
        model_uri=str(bundle),
        data_dir=Path(tempfile.mkdtemp(prefix="recsys-profile-")),
        reload_poll_seconds=0,
        latency_budget_ms=1000.0,
        **overrides,
    )
    app = create_app(settings)
    stages: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        for body in bodies[:50]:  # warm-up
            await _call(app, body)
        best = float("inf")
        for _ in range(passes):  # the lowest pass: a shared machine only ever adds CPU time
            c0 = time.process_time()
            for body in bodies:
                status, out = await _call(app, body)
                if status != 200:
                    raise RuntimeError(f"status {status}: {out[:300]!r}")
            best = min(best, (time.process_time() - c0) * 1000 / len(bodies))
        for body in bodies:
            _, out = await _call(app, body)
            for k, v in (json.loads(out).get("timings_ms") or {}).items():
                stages.setdefault(k, []).append(float(v))
        if profile is not None:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            for body in bodies:
                await _call(app, body)
            profiler.stop()
            profile.write_text(profiler.output_html())
            print(profiler.output_text(unicode=False, color=False, show_all=False)[:12000])
    return {
        "app_cpu_ms": round(best, 3),
        "stages_ms": {k: round(float(np.mean(stages[k])), 3) for k in STAGES if k in stages},
    }


async def _floor_passes(bundle: Path, bodies: list[bytes], passes: int) -> float:
    """The floor app's (``experiments/floor_app.py``) CPU ms per request, measured the same way."""
    from experiments.floor_app import app_from_env, train_floor_model

    os.environ["FLOOR_BUNDLE"] = str(bundle)
    os.environ["FLOOR_MODEL"] = str(
        train_floor_model(Path(tempfile.mkdtemp(prefix="floor-")) / "floor_model.txt")
    )
    app = app_from_env()
    for body in bodies[:50]:
        await _call(app, body)
    best = float("inf")
    for _ in range(passes):
        c0 = time.process_time()
        for body in bodies:
            status, out = await _call(app, body)
            if status != 200:
                raise RuntimeError(f"floor status {status}: {out[:300]!r}")
        best = min(best, (time.process_time() - c0) * 1000 / len(bodies))
    return round(best, 3)


def _pipeline_steps(bundle: Path, bodies: list[dict], passes: int) -> dict[str, float]:
    """CPU ms per request of each pipeline step (lowest of ``passes`` runs of each request),
    the bundle's default rules, no answer controls."""
    from feature_store import load_recommender
    from recsys.recommendation import BasketLine, RecommendationRequest

    rec = load_recommender(bundle)
    reqs = [
        RecommendationRequest(
            basket=tuple(BasketLine(b["sku"], b["quantity"]) for b in body["basket"]),
            page=body["page"],
            k=body["k"],
        )
        for body in bodies
    ]
    best: dict[str, float] = {}
    totals: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> Any:  # noqa: ANN401
        c0 = time.process_time()
        out = fn(*args)
        totals[name] = totals.get(name, 0.0) + time.process_time() - c0
        return out

    for r in reqs[:50]:
        rec.recommend(r)
    for _ in range(passes):  # each step once per request, in pipeline order; lowest pass
        totals.clear()
        for r in reqs:
            timed("recommend", rec.recommend, r)
        for r in reqs:
            prepared = timed("prepare", rec.prepare, [r])
            queries = [p.query() for p in prepared]
            for g in rec.generators:
                quota = rec.merger.quotas.get(g.name, 50)
                timed(f"gen.{g.name}", g.generate, queries, quota)
            merged = timed("candidates", rec.candidates, prepared)
            batch = timed("candidate_batch", rec.candidate_batch, prepared, merged)
            X = timed("features.compute", rec.features.compute, batch)
            scores = timed("rank", rec.rank, X)
            p, cands = prepared[0], merged[0]
            acc = timed("accessories", rec.accessories, p, rec.default_rules)
            picked, s, _ = timed("select", rec.select, p, cands, scores, None, acc)
            timed("explain", rec.explain, p, cands, picked, s)
        for k, v in totals.items():
            best[k] = min(best.get(k, float("inf")), v)
    totals = best
    out = {k: round(v * 1000 / len(reqs), 3) for k, v in totals.items()}
    # ``candidates`` runs the generators again (they were timed alone first)
    out["merge+fallback"] = round(
        out["candidates"] - sum(v for k, v in out.items() if k.startswith("gen.")), 3
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", default="sample", choices=["sample", "50k"])
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--profile", type=Path, help="write a pyinstrument HTML profile here")
    ap.add_argument(
        "--without-impressions",
        action="store_true",
        help="also measure the app with the impression log off",
    )
    args = ap.parse_args(argv)
    bundle, bodies_file = prepare(args.world)
    bodies = json.loads(bodies_file.read_text())[: args.requests]
    raws = [json.dumps(b).encode() for b in bodies]
    out: dict[str, Any] = {"world": args.world, "requests": len(bodies)}
    out |= asyncio.run(_app_passes(bundle, raws, args.passes, args.profile))
    if args.without_impressions:  # what the impression log costs per answer (CPU of its thread)
        out["app_cpu_ms_without_impressions"] = asyncio.run(
            _app_passes(bundle, raws, args.passes, None, impression_log_enabled=False)
        )["app_cpu_ms"]
    out["floor_cpu_ms"] = asyncio.run(_floor_passes(bundle, raws, args.passes))
    out["ratio"] = round(out["app_cpu_ms"] / out["floor_cpu_ms"], 2)
    out["pipeline_steps_cpu_ms"] = _pipeline_steps(bundle, bodies, args.passes)
    out["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
