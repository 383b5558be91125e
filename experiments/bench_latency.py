"""Latency and training-cost benchmark of the whole pipeline (not a test).

    python -m experiments.bench_latency                       # 3k and 50k SKUs, 100k and 1M interactions
    python -m experiments.bench_latency --skus 3000 50000 500000 --requests 500

Per-request latency: a pipeline fitted on a sample world with the given number of SKUs answers
held-out cart baskets one at a time, single thread (OMP/OpenBLAS/faiss/LightGBM threads = 1);
we report median and p99 of the total and of each stage (style + mapping, candidates, features,
ranker), and batch throughput (baskets per minute through ``recommend_batch``).
Training cost: ``fit_recommender`` on sample worlds of growing size, each in its own process so
peak RSS (``ru_maxrss``) is that run's. Writes ``experiments/reports/latency/README.md`` + PNGs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

REPORT = Path(__file__).parent / "reports" / "latency"
STAGES = ("prepare_style", "candidates", "features", "ranker", "assemble", "total")


def _bench_config(max_train: int):  # type: ignore[no-untyped-def]
    from feature_store import load_pipeline_config

    cfg = load_pipeline_config()
    training = cfg.training.model_copy(
        update={
            "max_train_orders": max_train,
            "max_validation_orders": 1500,
            "max_eval_orders": 500,
            "refit_generators": False,
        }
    )
    return cfg.model_copy(update={"training": training})


def latency(n_skus: int, n_orders: int, n_requests: int, seed: int = 7) -> dict:
    import faiss

    from recsys.data.orders import build_orders
    from recsys.recommendation import BasketLine, RecommendationRequest
    from recsys.sample_world import generate_world
    from training.fit import fit_recommender

    faiss.omp_set_num_threads(1)
    w = generate_world(seed=seed, n_orders=n_orders, n_skus=n_skus)
    t = time.perf_counter()
    res = fit_recommender(w.catalog, w.interactions, _bench_config(4000), seed=1, ablations=False)
    fit_s = time.perf_counter() - t
    rec = res.recommender
    orders = build_orders(w.interactions, w.catalog)
    late = np.nonzero(orders.ts >= np.quantile(orders.ts, 0.9))[0]
    rng = np.random.default_rng(0)
    pick = rng.choice(late, size=min(n_requests, len(late)), replace=False)
    skus = w.catalog.skus
    reqs = []
    for i in pick:
        items, qty = orders.items_of(int(i))
        keep = items[: max(1, len(items) - 1)]
        reqs.append(
            RecommendationRequest(basket=tuple(BasketLine(str(skus[r])) for r in keep), k=10)
        )
    for r in reqs[:20]:  # warm-up
        rec.recommend(r)
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    wall, cpu = [], []
    for r in reqs:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        out = rec.recommend(r)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
        for s in STAGES:
            per_stage[s].append(out.timings_ms.get(s, 0.0))
    t0 = time.perf_counter()
    rec.recommend_batch(reqs * max(1, 2000 // len(reqs)))
    batch_s = time.perf_counter() - t0
    n_batch = len(reqs) * max(1, 2000 // len(reqs))
    cpu0 = time.process_time()
    for r in reqs[:200]:
        rec.recommend(r)
    cpu_ms = (time.process_time() - cpu0) / min(200, len(reqs)) * 1000
    return {
        "generators_cpu_ms": _generator_costs(rec, reqs),
        "skus": n_skus,
        "orders": n_orders,
        "requests": len(reqs),
        "fit_seconds": round(fit_s, 1),
        "candidates_per_request": rec.config.total_candidates,
        "wall_ms": {"p50": float(np.median(wall)), "p99": float(np.percentile(wall, 99))},
        "cpu_ms_mean": cpu_ms,
        "cpu_ms": {"p50": float(np.median(cpu)), "p99": float(np.percentile(cpu, 99))},
        "stages_ms": {
            s: {"p50": float(np.median(v)), "p99": float(np.percentile(v, 99))}
            for s, v in per_stage.items()
        },
        "batch_baskets_per_minute": n_batch / batch_s * 60,
        "wall_samples": wall,
    }


def _generator_costs(rec, reqs: list) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Mean thread CPU ms per request of each generator as the pipeline calls it (its quota,
    one basket), and of scoring the other sources' candidates for the ranker
    (``candidate_batch``: EASE / RP3beta / item-kNN look their score of every candidate up in
    the basket's score row they kept)."""
    totals: dict[str, float] = {}
    for r in reqs:
        prepared = rec.prepare([r])
        queries = [p.query() for p in prepared]
        for g in rec.generators:
            c0 = time.thread_time()
            g.generate(queries, rec.merger.quotas.get(g.name, 50))
            totals[g.name] = totals.get(g.name, 0.0) + time.thread_time() - c0
        merged = rec.candidates(prepared)
        c0 = time.thread_time()
        rec.candidate_batch(prepared, merged)
        totals["pair scores"] = totals.get("pair scores", 0.0) + time.thread_time() - c0
    return {k: v * 1000 / max(len(reqs), 1) for k, v in totals.items()}


def training_cost(n_orders: int, seed: int = 7) -> dict:
    """Run in a child process: fit on a world with ``n_orders`` orders; peak RSS of this process."""
    import resource

    from recsys.sample_world import generate_world
    from training.fit import fit_recommender

    w = generate_world(seed=seed, n_orders=n_orders)
    n_inter = len(w.interactions)
    n_purchase = int((w.interactions.frame["event"] == "purchase").sum())
    t = time.perf_counter()
    res = fit_recommender(w.catalog, w.interactions, _bench_config(15000), seed=1, ablations=False)
    return {
        "orders": n_orders,
        "interactions": n_inter,
        "purchase_lines": n_purchase,
        "fit_seconds": round(time.perf_counter() - t, 1),
        "stages": res.stage_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "recall@10": res.evaluation.metrics.get("recall@10"),
    }


def _child(kind: str, arg: int, extra: int) -> dict:
    code = (
        "import json,sys; from experiments.bench_latency import latency, training_cost; "
        f"r = latency({arg}, {extra}, {int(os.environ.get('BENCH_REQUESTS', 500))}) if '{kind}' == 'latency' else training_cost({arg}); "
        "print('RESULT' + json.dumps(r))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[6:])
    raise RuntimeError(f"{kind} {arg} failed:\n{out.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--skus", type=int, nargs="*", default=[3000, 50_000])
    ap.add_argument("--orders-for-latency", type=int, default=30_000)
    ap.add_argument(
        "--train-orders",
        type=int,
        nargs="*",
        default=[4_000, 40_000],
        help="sample-world orders per training run (~35 interactions per order incl. views)",
    )
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--out", type=Path, default=REPORT)
    args = ap.parse_args(argv)
    os.environ["BENCH_REQUESTS"] = str(args.requests)
    lat = [_child("latency", s, args.orders_for_latency) for s in args.skus]
    train = [_child("train", n, 0) for n in args.train_orders]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {
                "latency": [{k: v for k, v in r.items() if k != "wall_samples"} for r in lat],
                "training": train,
            },
            indent=1,
        )
    )
    _plots(lat, train, args.out)
    text = _report(args, lat, train)
    (args.out / "README.md").write_text(text)
    print(text)
    return 0


def _plots(lat: list[dict], train: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in lat:
        s = np.sort(r["wall_samples"])
        ax.plot(s, np.arange(1, len(s) + 1) / len(s), label=f"{r['skus']:,} SKUs")
    ax.axvline(10, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("ms per request (single thread)")
    ax.set_ylabel("share of requests")
    ax.set_title("Per-request latency, candidates + features + ranker")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency_cdf.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [s for s in STAGES if s != "total"]
    bottom = np.zeros(len(lat))
    for s in names:
        vals = np.array([r["stages_ms"][s]["p50"] for r in lat])
        ax.bar([f"{r['skus']:,}" for r in lat], vals, bottom=bottom, label=s)
        bottom += vals
    ax.set_ylabel("median ms")
    ax.set_xlabel("catalog size (SKUs)")
    ax.set_title("Median time per stage")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "stages.png", dpi=110)
    plt.close(fig)


def _report(args: argparse.Namespace, lat: list[dict], train: list[dict]) -> str:
    lines = [
        "# Latency and training cost",
        "",
        f"Command: `python -m experiments.bench_latency --skus {' '.join(map(str, args.skus))} "
        f"--train-orders {' '.join(map(str, args.train_orders))} --requests {args.requests}`",
        "",
        "Machine: the shared 2-core development box (other engineers' jobs were running: wall-clock "
        "p99 is inflated by contention; the thread CPU time of each request is given next to it; "
        "stage times are wall clock). One thread for "
        "OpenMP/BLAS/faiss/LightGBM. Requests: held-out cart baskets (an order minus its last item) "
        "from the last 10% of the orders, answered one at a time after 20 warm-up requests; "
        "default pipeline (7 generators, 200 candidates, 150-tree ranker with early stopping).",
        "",
        "## Per-request latency (ms)",
        "",
        "| SKUs | requests | wall p50 | wall p99 | CPU p50 | CPU p99 | candidates p50/p99 | features p50/p99 | ranker p50/p99 | style+mapping p50 | batch baskets/min (wall) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: |",
    ]
    for r in lat:
        st = r["stages_ms"]
        lines.append(
            f"| {r['skus']:,} | {r['requests']} | {r['wall_ms']['p50']:.2f} | {r['wall_ms']['p99']:.2f} | "
            f"{r['cpu_ms']['p50']:.2f} | {r['cpu_ms']['p99']:.2f} | {st['candidates']['p50']:.2f} / {st['candidates']['p99']:.2f} | "
            f"{st['features']['p50']:.2f} / {st['features']['p99']:.2f} | {st['ranker']['p50']:.2f} / {st['ranker']['p99']:.2f} | "
            f"{st['prepare_style']['p50']:.2f} | {r['batch_baskets_per_minute']:,.0f} |"
        )
    names = list(lat[0].get("generators_cpu_ms", {})) if lat else []
    lines += [
        "",
        "### Per generator (mean thread CPU ms per request, one basket, the pipeline's quota)",
        "",
        "`pair scores`: the ranker's EASE / RP3beta / item-kNN score of the candidates other "
        "sources proposed (a lookup in the score row each kept for the basket).",
        "",
        "| SKUs | " + " | ".join(names) + " |",
        "| ---: | " + " | ".join("---:" for _ in names) + " |",
    ]
    for r in lat:
        g = r.get("generators_cpu_ms", {})
        lines.append(
            f"| {r['skus']:,} | "
            + " | ".join(f"{g.get(n, float('nan')):.3f}" for n in names)
            + " |"
        )
    lines += [
        "",
        "![latency](latency_cdf.png) ![stages](stages.png)",
        "",
        "## Training cost (`fit_recommender`, default pipeline; ranker examples capped at 15k orders, "
        "no final refit, no ablations, 500 evaluation baskets)",
        "",
        "| orders | interactions (all events) | purchase lines | fit s | peak RSS MB | recall@10 | stages (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in train:
        lines.append(
            f"| {r['orders']:,} | {r['interactions']:,} | {r['purchase_lines']:,} | {r['fit_seconds']} | "
            f"{r['peak_rss_mb']:.0f} | {r['recall@10']:.4f} | {r['stages']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
