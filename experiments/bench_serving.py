"""Serving benchmark with its own floor: ``recsys serve`` next to a minimal FastAPI app.

    python -m experiments.bench_serving --label after                 # sample world + 50k SKUs
    python -m experiments.bench_serving --worlds sample --duration 5 --label quick
    python -m experiments.bench_serving --report-only                 # redraw from results-*.json

For each world (``sample``: 4,000 SKUs; ``50k``: a generated 50,000-SKU catalog; bundles and
request bodies are built once by ``experiments.load_test.prepare`` and cached under
``data/load/<world>/``) it starts, on free 127.0.0.1 ports, with the same number of workers:

* the real service: ``recsys serve --workers N --model-uri <bundle>``;
* the floor app (``experiments/floor_app.py``): parse the basket, one exact faiss search k=200
  over the bundle's item vectors, LightGBM predict on 200 x 30 features with a 150-tree model,
  ten items out as JSON.

Both get the same request bodies (50% cart / 50% checkout baskets from the world's late orders)
OPEN-LOOP (request i is due at t0 + i/rate; latency counts from the due time). First a short
calibration at a low rate measures server CPU per request (utime + stime summed over every
process of each server, from /proc) and collects the pipeline's own stage timings
(``timings_ms``); the service's capacity is estimated as ``1000 / CPU ms per request x the
cores available to it`` (its own CPU plus the machine's idle CPU during the calibration, at most
one per worker: on a shared machine the other jobs take the rest); then both apps are driven,
alternately, at fractions of that capacity (each phase bounded by ``--duration`` seconds and ``--max-requests``). Reported per phase: CPU ms per
request, client p50/p99, errors, degraded share, and the ratios service / floor.

Results go to ``experiments/reports/serving/results-<label>.json``; README.md and
serving.png are rebuilt from every results file there (e.g. ``baseline`` and ``after``).
The load generator shares the cores with both servers; CPU time per request is the figure
that does not depend on the other jobs of a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

from experiments.load_test import CLK_TCK, WORLDS, free_port, open_loop, pct, prepare, raw_post  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "experiments" / "reports" / "serving"
STAGES = ("prepare_style", "candidates", "features", "ranker", "assemble", "total")


# -- servers ----------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's supervisor spawns the workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


@dataclass
class App:
    name: str
    proc: subprocess.Popen
    port: int

    def cpu_seconds(self) -> float:
        """utime + stime of every process of the server (live ones; workers live all run)."""
        total = 0
        for pid in _tree(self.proc.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
        return total / CLK_TCK

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _wait_ready(app: App, workers: int, timeout: float = 240) -> App:
    import httpx

    deadline, hits = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise RuntimeError(f"{app.name} exited with {app.proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{app.port}/readyz", timeout=2).status_code == 200:
                hits += 1
                if hits >= 3 * workers:  # several hits: every worker has loaded
                    return app
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    app.stop()
    raise RuntimeError(f"{app.name} did not become ready in {timeout:.0f} s")


def start_service(bundle: Path, workers: int, budget_ms: float) -> App:
    """``recsys serve`` as an operator runs it (threads per worker stay at 1)."""
    port = free_port()
    env = {
        **os.environ,
        "RECSYS_DATA_DIR": tempfile.mkdtemp(prefix="recsys-bench-"),
        "RECSYS_RELOAD_POLL_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
        "RECSYS_LATENCY_BUDGET_MS": str(budget_ms),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from recsys.cli import main; sys.exit(main())",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--model-uri",
            str(bundle),
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return _wait_ready(App("service", proc, port), workers)


def start_floor(bundle: Path, model: Path, workers: int) -> App:
    port = free_port()
    env = {
        **os.environ,
        "FLOOR_BUNDLE": str(bundle),
        "FLOOR_MODEL": str(model),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "experiments.floor_app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--timeout-keep-alive",
            "30",
        ],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return _wait_ready(App("floor", proc, port), workers)


# -- phases -----------------------------------------------------------------------------------
def idle_cpu_seconds() -> float:
    """Idle + iowait CPU seconds of the whole machine so far (/proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / CLK_TCK


def idle_cpu_rate(app: App, seconds: float) -> float:
    """CPU seconds per second the server burns with no traffic (pollers, supervisor)."""
    c0, t0 = app.cpu_seconds(), time.perf_counter()
    time.sleep(seconds)
    return (app.cpu_seconds() - c0) / (time.perf_counter() - t0)


def phase(
    app: App,
    raws: list[bytes],
    rate: float,
    duration: float,
    max_requests: int,
    stages: dict[str, list[float]] | None = None,
    idle_rate: float = 0.0,
) -> dict:
    """One open-loop phase; CPU is measured over the phase and divided by requests sent.
    ``available_cores``: the server's own CPU plus the machine's idle CPU over the phase, i.e.
    what this server could have used while the other jobs ran."""

    def on_body(body: bytes) -> None:
        if stages is not None:
            t = json.loads(body).get("timings_ms") or {}
            for k in STAGES:
                if k in t:
                    stages.setdefault(k, []).append(float(t[k]))

    cpu0, idle0 = app.cpu_seconds(), idle_cpu_seconds()
    t0 = time.perf_counter()
    raw = asyncio.run(
        open_loop(app.port, raws, rate, duration, on_body=on_body, max_requests=max_requests)
    )
    wall = time.perf_counter() - t0
    time.sleep(0.3)  # let the last responses' CPU be accounted
    cpu = app.cpu_seconds() - cpu0
    idle = idle_cpu_seconds() - idle0
    n_err = sum(raw["errors"].values())
    return {
        "app": app.name,
        "rate": round(rate, 1),
        "sent": raw["sent"],
        "errors": raw["errors"],
        "error_rate": round(n_err / max(raw["sent"], 1), 4),
        "degraded_share": round(raw["degraded"] / max(raw["sent"], 1), 4),
        "cpu_ms_per_request": round(1000 * cpu / max(raw["sent"], 1), 3),
        # without what the server burns idle over the same time: the cost of the requests
        "cpu_ms_per_request_net": round(
            1000 * max(cpu - idle_rate * (wall + 0.3), 0.0) / max(raw["sent"], 1), 3
        ),
        "cpu_pct": round(100 * cpu / wall, 1),
        "available_cores": round((cpu + idle) / (wall + 0.3), 2),
        "client_p50": pct(raw["client_ms"], 50),
        "client_p99": pct(raw["client_ms"], 99),
        "server_p50": pct(raw["server_ms"], 50),
        "server_p99": pct(raw["server_ms"], 99),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def run_world(world: str, args: argparse.Namespace, model: Path) -> dict:
    bundle, bodies_file = prepare(world)
    bodies = json.loads(bodies_file.read_text())
    raws = [raw_post("/v1/recommendations", json.dumps(b).encode()) for b in bodies]
    print(
        f"[{world}] starting recsys serve and the floor app, {args.workers} workers each",
        flush=True,
    )
    service = start_service(bundle, args.workers, args.latency_budget_ms)
    try:
        floor = start_floor(bundle, model, args.workers)
    except Exception:
        service.stop()
        raise
    try:
        for app in (service, floor):  # warm-up (imports, caches, first faiss calls), not recorded
            phase(app, raws, args.calibration_rate, 3.0, 200)
        idle = {app.name: idle_cpu_rate(app, args.idle_seconds) for app in (service, floor)}
        print(f"[{world}] idle CPU (s/s): {idle}", flush=True)
        stages: dict[str, list[float]] = {}
        calib = {}
        for app in (service, floor):
            calib[app.name] = phase(
                app,
                raws,
                args.calibration_rate,
                args.calibration_duration,
                args.max_requests,
                stages if app is service else None,
                idle[app.name],
            )
            print(f"[{world}] calibration {json.dumps(calib[app.name])}", flush=True)
        cores = min(args.workers, calib["service"]["available_cores"])
        capacity = cores * 1000.0 / max(calib["service"]["cpu_ms_per_request"], 1e-3)
        rows = []
        for frac in args.fractions:
            rate = frac * capacity
            for app in (service, floor):
                row = phase(
                    app, raws, rate, args.duration, args.max_requests, idle_rate=idle[app.name]
                )
                row["fraction"] = frac
                rows.append(row)
                print(f"[{world}] {frac:.2f} x capacity {json.dumps(row)}", flush=True)
                time.sleep(0.5)
    finally:
        service.stop()
        floor.stop()
    return {
        "world": world,
        "calibration": calib,
        "idle_cpu_per_s": {k: round(v, 4) for k, v in idle.items()},
        "capacity_estimate": round(capacity, 1),
        "available_cores": round(cores, 2),
        "stages_ms": {k: round(float(np.mean(v)), 3) for k, v in stages.items()},
        "stages_p99_ms": {k: round(float(np.percentile(v, 99)), 3) for k, v in stages.items()},
        "rows": rows,
    }


# -- report -----------------------------------------------------------------------------------
def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def summary(result: dict) -> list[dict]:
    """Per world: CPU ratio (calibration) and per-rate p99 ratios."""
    out = []
    for w in result["worlds"]:
        c = w["calibration"]
        line = {
            "world": w["world"],
            "cpu_service": c["service"]["cpu_ms_per_request"],
            "cpu_floor": c["floor"]["cpu_ms_per_request"],
            "cpu_ratio": _ratio(
                c["service"]["cpu_ms_per_request"], c["floor"]["cpu_ms_per_request"]
            ),
            "cpu_net_service": c["service"].get("cpu_ms_per_request_net"),
            "cpu_net_floor": c["floor"].get("cpu_ms_per_request_net"),
            "cpu_net_ratio": _ratio(
                c["service"].get("cpu_ms_per_request_net"), c["floor"].get("cpu_ms_per_request_net")
            ),
        }
        for frac in sorted({r["fraction"] for r in w["rows"]}):
            s = next(r for r in w["rows"] if r["fraction"] == frac and r["app"] == "service")
            f = next(r for r in w["rows"] if r["fraction"] == frac and r["app"] == "floor")
            line[f"p99_ratio@{frac}"] = _ratio(s["client_p99"], f["client_p99"])
            line[f"errors@{frac}"] = s["error_rate"]
        out.append(line)
    return out


def plot(results: dict[str, dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(results)
    worlds = sorted({w["world"] for r in results.values() for w in r["worlds"]})
    fig, axes = plt.subplots(1, 1 + len(worlds), figsize=(5 * (1 + len(worlds)), 4.2))
    ax = axes[0]
    width = 0.8 / (2 * len(labels))
    for i, world in enumerate(worlds):
        for j, label in enumerate(labels):
            w = next((x for x in results[label]["worlds"] if x["world"] == world), None)
            if w is None:
                continue
            svc = w["calibration"]["service"]["cpu_ms_per_request"]
            flo = w["calibration"]["floor"]["cpu_ms_per_request"]
            x = i + (2 * j) * width
            ax.bar(x, svc, width, color=f"C{j}", label=f"{label}: service" if i == 0 else None)
            ax.bar(
                x + width,
                flo,
                width,
                color=f"C{j}",
                alpha=0.35,
                hatch="//",
                label=f"{label}: floor" if i == 0 else None,
            )
            ax.text(x + width / 2, svc * 1.02, f"{svc / flo:.2f}x", ha="center", fontsize=7)
    ax.set_xticks([i + width * (len(labels) - 0.5) for i in range(len(worlds))], worlds)
    ax.set_ylabel("server CPU ms per request (calibration phase)")
    ax.set_title("CPU per request, service vs floor (ratio above)")
    ax.legend(fontsize=6, ncol=2)
    for ax, world in zip(axes[1:], worlds, strict=True):
        for label in labels:
            w = next((x for x in results[label]["worlds"] if x["world"] == world), None)
            if w is None:
                continue
            for app, style in (("service", "-"), ("floor", ":")):
                pts = sorted((r for r in w["rows"] if r["app"] == app), key=lambda r: r["rate"])
                ax.plot(
                    [r["rate"] for r in pts],
                    [r["client_p99"] or np.nan for r in pts],
                    style,
                    marker="o",
                    label=f"{label} {app} p99",
                )
        ax.set_yscale("log")
        ax.set_xlabel("offered load (requests/s, open loop)")
        ax.set_ylabel("client p99 ms (log)")
        ax.set_title(f"{world}: p99 vs rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "serving.png", dpi=110)


def report(results: dict[str, dict]) -> str:
    lines = [
        "# Serving benchmark: `recsys serve` against an in-run floor",
        "",
        "Generated by `python -m experiments.bench_serving` (see its `--help`). Each results "
        "file is one run: the real service and the floor app (`experiments/floor_app.py`: "
        "parse the basket, one exact faiss search k=200 over the catalog's item vectors, "
        "LightGBM predict on 200 x 30 features with 150 trees, ten items out) started side by "
        "side with the same worker count, catalog and request bodies (50% cart / 50% checkout "
        "baskets from the world's late orders), driven open-loop, alternately.",
        "",
        "**The machine is shared** (2 cores, several other engineers' jobs running: see the "
        "load average column). Server CPU ms per request (utime + stime over every server "
        "process, divided by the requests sent) is the figure that does not depend on the "
        "other jobs; latencies do. Stage times come from the pipeline's own `timings_ms` "
        "(perf_counter inside one request on one thread, measured at the low calibration rate "
        "where they are close to CPU time). Capacity = 1000 / service CPU ms per request x "
        "the cores available to the service during the calibration (its own CPU plus the "
        "machine's idle CPU, at most one per worker): what the shared machine could give it "
        "then. The rates of the phases are fractions of that capacity, the same for both apps. "
        "The service runs with `RECSYS_LATENCY_BUDGET_MS` raised (see each run) so that, like "
        "the floor, every answer runs the ranker: with the default 50 ms budget a slow shared "
        "machine makes it skip the ranker (`degraded`), which would flatter its CPU figure.",
        "",
        "## Ratios (service / floor, same run)",
        "",
        "`CPU` = all CPU of the server processes during the calibration phase / requests; "
        "`net` = the same minus what the server burns with no traffic over that time (measured "
        "for a few seconds before; the service's pollers and uvicorn's supervisor, the floor's "
        "supervisor): the cost of the requests themselves.",
        "",
        "| run | world | CPU ms/req service | floor | **CPU ratio** (target <= 1.5) | net service | net floor | **net ratio** | p99 ratio at 0.5 x capacity (target <= 2) | errors at 0.5 x capacity |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, res in results.items():
        for s in summary(res):
            lines.append(
                f"| {label} | {s['world']} | {s['cpu_service']} | {s['cpu_floor']} | "
                f"**{s['cpu_ratio']}** | {s['cpu_net_service'] or '-'} | {s['cpu_net_floor'] or '-'} | "
                f"**{s['cpu_net_ratio'] or '-'}** | {s.get('p99_ratio@0.5')} | {s.get('errors@0.5')} |"
            )
    for label, res in results.items():
        lines += [
            "",
            f"## Run `{label}`",
            "",
            f"{res['started']} UTC, commit `{res['commit']}`, {res['workers']} workers each, "
            f"Python {res['python']}, load average before: {res['load_before']}, service latency "
            f"budget {res.get('latency_budget_ms', 50)} ms. "
            f"Command: `python -m experiments.bench_serving {res['command']}`",
            "",
        ]
        for w in res["worlds"]:
            st = w["stages_ms"]
            lines += [
                f"### {w['world']} (capacity estimate {w['capacity_estimate']} req/s on "
                f"{w.get('available_cores', '?')} available cores)",
                "",
                f"Idle CPU (s per s, no traffic): {w.get('idle_cpu_per_s', 'not measured')}",
                "",
                "Pipeline stages, mean ms per request (p99): "
                + ", ".join(f"{k} {st[k]} ({w['stages_p99_ms'][k]})" for k in STAGES if k in st),
                "",
                "| phase | app | rate/s | sent | errors | degraded | CPU ms/req | net | CPU % | "
                "client p50 | client p99 | server p50 | server p99 | load |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            ]
            rows = [
                ("calibration", w["calibration"]["service"]),
                ("calibration", w["calibration"]["floor"]),
            ]
            rows += [(f"{r['fraction']} x capacity", r) for r in w["rows"]]
            for ph, r in rows:
                lines.append(
                    f"| {ph} | {r['app']} | {r['rate']} | {r['sent']} | {r['error_rate']:.2%} | "
                    f"{r['degraded_share']:.1%} | {r['cpu_ms_per_request']} | "
                    f"{r.get('cpu_ms_per_request_net', '-')} | {r['cpu_pct']}% | "
                    f"{r['client_p50']} | {r['client_p99']} | {r['server_p50'] or '-'} | "
                    f"{r['server_p99'] or '-'} | {r['loadavg_1m']} |"
                )
            lines.append("")
    lines += ["![serving](serving.png)", ""]
    notes = REPORT / "notes.md"
    if notes.is_file():  # the hand-written reading of the figures
        lines += [notes.read_text()]
    return "\n".join(lines)


def write_report(out: Path) -> str:
    results = {}
    for f in sorted(out.glob("results-*.json"), key=lambda p: p.stat().st_mtime):
        results[f.stem.removeprefix("results-")] = json.loads(f.read_text())
    if not results:
        raise SystemExit(f"no results-*.json in {out}: run the benchmark first")
    plot(results, out)
    text = report(results)
    (out / "README.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--worlds", nargs="*", default=["sample", "50k"], choices=list(WORLDS))
    ap.add_argument("--workers", type=int, default=2, help="workers of each app")
    ap.add_argument(
        "--fractions",
        type=float,
        nargs="*",
        default=[0.25, 0.5, 0.8],
        help="rates as fractions of the service's estimated CPU capacity",
    )
    ap.add_argument(
        "--calibration-rate", type=float, default=40.0, help="req/s of the CPU calibration"
    )
    ap.add_argument("--calibration-duration", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase (upper bound)")
    ap.add_argument(
        "--max-requests", type=int, default=1500, help="requests per phase (upper bound)"
    )
    ap.add_argument(
        "--latency-budget-ms",
        type=float,
        default=1000.0,
        help="the service's RECSYS_LATENCY_BUDGET_MS: high by default so that, like the "
        "floor, every answer runs the ranker even when the shared machine is slow "
        "(the default 50 ms budget skips it: 'degraded')",
    )
    ap.add_argument(
        "--idle-seconds",
        type=float,
        default=5.0,
        help="seconds of no traffic to measure each server's idle CPU",
    )
    ap.add_argument("--label", default="run", help="results-<label>.json (e.g. baseline, after)")
    ap.add_argument("--report-only", action="store_true", help="rebuild README.md and the plot")
    ap.add_argument("--out", type=Path, default=REPORT)
    ap.add_argument(
        "--commit", help="what code is measured (default: git describe of this checkout)"
    )
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        from experiments.floor_app import train_floor_model

        model = train_floor_model(Path(tempfile.mkdtemp(prefix="floor-")) / "floor_model.txt")
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        result = {
            "started": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            "commit": args.commit or (commit + ("+dirty" if dirty else "")),
            "workers": args.workers,
            "python": platform.python_version(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
            "command": " ".join(sys.argv[1:]),
            "latency_budget_ms": args.latency_budget_ms,
            "worlds": [],
        }
        for world in args.worlds:
            result["worlds"].append(run_world(world, args, model))
            (args.out / f"results-{args.label}.json").write_text(json.dumps(result, indent=1))
        for s in summary(result):
            print(json.dumps(s), flush=True)
    print(write_report(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
