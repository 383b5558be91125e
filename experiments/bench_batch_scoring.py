"""Batch scoring throughput: JSON lines in -> ``Recommender.recommend_batch`` -> JSON lines out.

    python -m experiments.bench_batch_scoring --model models:/home-xsell@champion \
        --interactions data/sample/interactions.parquet --baskets 20000 --repeats 3

Baskets are the first items (1-5) of real purchase orders from ``--interactions`` (the later
half of them in time), or random catalog SKUs without it; 2% of baskets carry an unknown SKU
and a third are at checkout (accessory slots). Measures the whole path of ``recsys
recommend`` (parse, score, serialise) single-threaded for each chunk size, and writes a
Markdown report with plots to ``experiments/reports/training/``. Target: >= 20,000
baskets/minute.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPORT_DIR = Path(__file__).resolve().parent / "reports" / "training"


def make_baskets(
    catalog_skus: list[str], interactions: Path | None, n: int, seed: int
) -> list[str]:
    """``n`` JSON lines of baskets (see the module docstring)."""
    rng = np.random.default_rng(seed)
    baskets: list[list[str]] = []
    if interactions is not None:
        ev = pd.read_parquet(interactions, columns=["order_id", "sku", "ts", "event"])
        ev = ev[ev["event"] == "purchase"].sort_values("ts", kind="stable")
        orders = ev.groupby("order_id", sort=False)["sku"].agg(list)
        later = orders.iloc[len(orders) // 2 :]
        picks = rng.choice(len(later), size=n, replace=len(later) < n)
        for i in picks:
            items = list(dict.fromkeys(later.iloc[int(i)]))
            baskets.append(items[: int(rng.integers(1, 6))])
    else:
        for _ in range(n):
            size = int(rng.integers(1, 6))
            baskets.append([catalog_skus[int(j)] for j in rng.integers(0, len(catalog_skus), size)])
    lines = []
    for i, skus in enumerate(baskets):
        if rng.random() < 0.02:
            skus = [*skus, f"UNKNOWN-{i}"]
        page = "checkout" if rng.random() < 1 / 3 else "cart"
        lines.append(
            json.dumps({"basket_id": f"b{i}", "skus": skus, "user_id": None, "page": page})
        )
    return lines


def bench(recommender, lines: list[str], chunk_size: int, k: int) -> dict[str, float]:  # noqa: ANN001
    """One full pass; returns seconds, baskets/min and per-chunk latency quantiles (ms)."""
    from training.batch_scoring import score_stream

    chunk_ms: list[float] = []
    original = recommender.recommend_batch

    def timed(requests, **kw):  # noqa: ANN001, ANN003, ANN202
        t = time.perf_counter()
        out = original(requests, **kw)
        chunk_ms.append(1000 * (time.perf_counter() - t))
        return out

    recommender.recommend_batch = timed
    try:
        sink = io.StringIO()
        t0 = time.perf_counter()
        summary = score_stream(
            recommender, io.StringIO("\n".join(lines) + "\n"), sink, k=k, chunk_size=chunk_size
        )
        seconds = time.perf_counter() - t0
    finally:
        recommender.recommend_batch = original
    return {
        "seconds": seconds,
        "baskets_per_minute": 60 * summary.baskets_out / seconds,
        "chunk_ms_p50": float(np.median(chunk_ms)),
        "chunk_ms_p99": float(np.quantile(chunk_ms, 0.99)),
        "per_basket_ms": 1000 * seconds / summary.baskets_out,
        "recommend_share": sum(chunk_ms) / 1000 / seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", default="models:/home-xsell@champion", help="bundle folder or MLflow model URI"
    )
    parser.add_argument(
        "--interactions", type=Path, default=None, help="draw baskets from real orders of this file"
    )
    parser.add_argument("--baskets", type=int, default=20_000)
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPORT_DIR)
    args = parser.parse_args(argv)

    import faiss

    faiss.omp_set_num_threads(1)
    from training.batch_scoring import load_model

    t = time.perf_counter()
    rec = load_model(args.model)
    load_s = time.perf_counter() - t
    lines = make_baskets(rec.catalog.ids.to_list(), args.interactions, args.baskets, args.seed)
    bench(rec, lines[:500], 500, args.k)  # warm-up (lazy structures, caches)
    rows = []
    for chunk in args.chunk_sizes:
        for rep in range(args.repeats):
            r = bench(rec, lines, chunk, args.k)
            rows.append({"chunk_size": chunk, "repeat": rep, **r})
            print(
                f"chunk {chunk:>5} rep {rep}: {r['baskets_per_minute']:,.0f} baskets/min "
                f"({r['per_basket_ms']:.2f} ms/basket; chunk p50 {r['chunk_ms_p50']:.0f} ms, "
                f"p99 {r['chunk_ms_p99']:.0f} ms)",
                flush=True,
            )
    frame = pd.DataFrame(rows)
    summary = frame.groupby("chunk_size").agg(
        bpm_median=("baskets_per_minute", "median"),
        bpm_min=("baskets_per_minute", "min"),
        ms_basket_median=("per_basket_ms", "median"),
        chunk_p50=("chunk_ms_p50", "median"),
        chunk_p99=("chunk_ms_p99", "max"),
        recommend_share=("recommend_share", "median"),
    )
    write_report(args, frame, summary, load_s, len(rec.catalog), rec.version)
    return 0


def write_report(
    args,
    frame: pd.DataFrame,
    summary: pd.DataFrame,
    load_s: float,  # noqa: ANN001
    n_items: int,
    version: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for chunk, grp in frame.groupby("chunk_size"):
        axes[0].scatter([str(chunk)] * len(grp), grp["baskets_per_minute"], color="#4c72b0")
    axes[0].axhline(20_000, color="#c44e52", linestyle="--", label="target 20,000/min")
    axes[0].set_xlabel("chunk size (baskets per recommend_batch)")
    axes[0].set_ylabel("baskets per minute")
    axes[0].set_ylim(bottom=0)
    axes[0].legend()
    axes[0].set_title("Throughput per repeat")
    axes[1].bar([str(c) for c in summary.index], summary["ms_basket_median"], color="#55a868")
    axes[1].set_xlabel("chunk size")
    axes[1].set_ylabel("ms per basket (median)")
    axes[1].set_title("Cost per basket")
    fig.tight_layout()
    png = args.out / "batch_scoring.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    lines = [
        "# Batch scoring throughput (`recsys recommend`)",
        "",
        f"Command: `python -m experiments.bench_batch_scoring --model {args.model}"
        + (f" --interactions {args.interactions}" if args.interactions else "")
        + f" --baskets {args.baskets} --repeats {args.repeats} --chunk-sizes "
        + " ".join(map(str, args.chunk_sizes))
        + "`",
        "",
        f"Model: {version}, {n_items:,} catalog items; load {load_s:.1f} s (not in the figures).",
        f"Baskets: {args.baskets:,} ("
        + ("first 1-5 items of later real orders" if args.interactions else "random catalog SKUs")
        + "), 2% with an unknown SKU, 1/3 at checkout; k = "
        f"{args.k}. One thread (OMP/OpenBLAS/faiss = 1), machine: {platform.machine()}, "
        f"{os.cpu_count()} cores shared with other work while measured.",
        "Figures cover parsing, `recommend_batch` and JSON serialisation (the whole CLI path "
        "minus file IO).",
        "",
        "| chunk size | baskets/min (median) | baskets/min (worst) | ms/basket | chunk p50 ms | "
        "chunk p99 ms | share in recommend_batch |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for chunk, r in summary.iterrows():
        lines.append(
            f"| {chunk} | {r.bpm_median:,.0f} | {r.bpm_min:,.0f} | {r.ms_basket_median:.2f} | "
            f"{r.chunk_p50:.0f} | {r.chunk_p99:.0f} | {r.recommend_share:.0%} |"
        )
    best = summary["bpm_median"].max()
    lines += [
        "",
        f"Target >= 20,000 baskets/minute: {'met' if best >= 20_000 else 'NOT met'} "
        f"(best median {best:,.0f}).",
        "",
        "![throughput](batch_scoring.png)",
        "",
    ]
    (args.out / "batch_scoring.md").write_text("\n".join(lines))
    frame.to_csv(args.out / "batch_scoring_runs.csv", index=False)
    print(f"report: {args.out / 'batch_scoring.md'}")


if __name__ == "__main__":
    raise SystemExit(main())
