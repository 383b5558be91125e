"""CPU cost of the impression log: server CPU per recommendation request with the log on vs off,
measured in the same run on two real API processes (uvicorn, 127.0.0.1) serving the same bundle.

Each process is pinned to the same request mix (cart baskets drawn from the catalog, a session
id each, so every answer is identified and, with the log on, queued and written in batches).
Rounds alternate on/off to spread machine noise evenly; the figure is the ratio of the medians
of CPU seconds per request (user + system time of the server process from /proc, which includes
the recorder's background writes). Target: ratio <= 1.10.

    python -m experiments.bench_impressions --requests 1500 --rounds 4
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from experiments.simulate_storefront import ApiProcess, fit_bundle

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench_impressions")


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def bodies(skus: list[str], n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "basket": [{"sku": s} for s in rng.choice(skus, size=3, replace=False)],
            "page": "cart",
            "k": 10,
            "session_id": f"bench-{seed}-{i}",
        }
        for i in range(n)
    ]


def round_cpu(api: ApiProcess, reqs: list[dict]) -> tuple[float, float]:
    """CPU seconds per request and wall seconds for ``reqs`` sent one after another."""
    assert api.proc is not None
    with httpx.Client(base_url=api.base, timeout=30) as c:
        for b in reqs[:20]:  # warm-up
            c.post("/v1/recommendations", json=b).raise_for_status()
        time.sleep(1.5)  # let the recorder flush the warm-up
        c0, t0 = cpu_seconds(api.proc.pid), time.perf_counter()
        for b in reqs:
            c.post("/v1/recommendations", json=b).raise_for_status()
        time.sleep(1.5)  # the batched writes of this round land inside the measurement
        c1, t1 = cpu_seconds(api.proc.pid), time.perf_counter()
    return (c1 - c0) / len(reqs), t1 - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--bundle", type=Path, help="model bundle (default: fit one on a small sample world)"
    )
    p.add_argument("--requests", type=int, default=1500, help="requests per round and process")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--out", type=Path, default=ROOT / "experiments" / "reports" / "impressions")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="bench-impressions-"))
    bundle = args.bundle
    if bundle is None:
        from recsys.sample_world import generate_world

        world = generate_world(seed=7, n_orders=2500)
        bundle = fit_bundle(
            world,
            world.interactions.frame["ts"].max() + np.timedelta64(1, "s"),
            ROOT / "tests" / "serving" / "pipeline_small.yaml",
            work / "bundle",
            7,
        )
    from feature_store import load_recommender

    skus = [str(s) for s in load_recommender(bundle).catalog.skus]
    (work / "on").mkdir()
    (work / "off").mkdir()
    results: dict[str, list[float]] = {"on": [], "off": []}
    walls: dict[str, list[float]] = {"on": [], "off": []}
    with (
        ApiProcess(bundle, work / "on", {"RECSYS_IMPRESSION_LOG_ENABLED": "true"}) as on,
        ApiProcess(bundle, work / "off", {"RECSYS_IMPRESSION_LOG_ENABLED": "false"}) as off,
    ):
        for r in range(args.rounds):
            reqs = bodies(skus, args.requests, seed=r)
            order = [("on", on), ("off", off)] if r % 2 == 0 else [("off", off), ("on", on)]
            for name, api in order:
                cpu, wall = round_cpu(api, reqs)
                results[name].append(cpu)
                walls[name].append(wall)
                log.info("round %d %s: %.3f ms CPU/request", r + 1, name, cpu * 1000)
        with httpx.Client(base_url=on.base, timeout=10) as c:
            c.get("/healthz")
    from feature_store.impression_log import ImpressionLog

    logged = ImpressionLog(f"sqlite:///{(work / 'on' / 'recsys.db').resolve()}").count()
    not_logged = ImpressionLog(f"sqlite:///{(work / 'off' / 'recsys.db').resolve()}").count()
    on_ms = statistics.median(results["on"]) * 1000
    off_ms = statistics.median(results["off"]) * 1000
    summary = {
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "cpu_ms_per_request_on": results["on"],
        "cpu_ms_per_request_off": results["off"],
        "median_on_ms": on_ms,
        "median_off_ms": off_ms,
        "ratio": on_ms / off_ms,
        "impressions_stored_on": logged,
        "impressions_stored_off": not_logged,
    }
    summary["cpu_ms_per_request_on"] = [x * 1000 for x in results["on"]]
    summary["cpu_ms_per_request_off"] = [x * 1000 for x in results["off"]]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    _plot(summary, args.out / "cpu.png")
    command = "python -m experiments.bench_impressions " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    (args.out / "README.md").write_text(
        "# Impression log: CPU cost per recommendation request\n\n"
        f"Reproduce: `{command.strip()}`\n\n"
        "Two real API processes (uvicorn, one worker each, 127.0.0.1) serve the same bundle (sample "
        "world seed 7, 2,500 orders, the tests' small pipeline), one with "
        "`RECSYS_IMPRESSION_LOG_ENABLED=true`, one with `false`; the same cart requests (3 SKUs, "
        f"k=10, a session id each) go to both, {args.requests} per round, {args.rounds} rounds "
        "alternating which goes first. CPU = user + system seconds of the server process (/proc), "
        "including the recorder's batched SQLite writes (each round waits for the flush).\n\n"
        f"| | median CPU ms / request | rounds |\n| --- | --- | --- |\n"
        f"| log on | {on_ms:.3f} | {', '.join(f'{x:.3f}' for x in summary['cpu_ms_per_request_on'])} |\n"
        f"| log off | {off_ms:.3f} | {', '.join(f'{x:.3f}' for x in summary['cpu_ms_per_request_off'])} |\n\n"
        f"**Ratio on / off: {on_ms / off_ms:.3f}** (target <= 1.10). Impressions stored: {logged:,} "
        f"with the log on, {not_logged} with it off.\n\n"
        "The machine was shared with other agents (2 cores): absolute milliseconds are context "
        "only; the ratio is measured in one run with alternating rounds.\n\n![cpu](cpu.png)\n"
    )
    print(f"ratio on/off = {on_ms / off_ms:.3f} ({on_ms:.3f} vs {off_ms:.3f} ms CPU per request)")
    return 0


def _plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    rounds = range(1, len(summary["cpu_ms_per_request_on"]) + 1)
    ax.plot(rounds, summary["cpu_ms_per_request_on"], "o-", label="impression log on")
    ax.plot(rounds, summary["cpu_ms_per_request_off"], "s-", label="impression log off")
    ax.set_xlabel("round")
    ax.set_ylabel("server CPU ms / request")
    ax.set_ylim(bottom=0)
    ax.set_title(f"ratio of medians {summary['ratio']:.3f}", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
