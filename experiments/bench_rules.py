"""Rule matching benchmark (issue 7 target: p99 < 1 ms per basket with 10,000 rules).

    python -m experiments.bench_rules [--rules 10000] [--baskets 3000] [--out experiments/reports/rules]

Two catalogues:
- ``sample``: the sample world (4,000 SKUs, ~40 categories). 10,000 rules over ~40 categories
  is a deliberately dense worst case: every basket category triggers ~250 rules.
- ``wide``: a synthetic catalogue of 50,000 SKUs in 1,000 categories (closer to a real DIY
  store), rules spread over all of them.

Rules are random but shaped like real ones: 70% trigger on 1-3 categories, 15% on 1-3 SKUs,
10% on an attribute (``material = x``), 5% ``match: all`` of two categories; about a quarter
have an ``unless`` category, 10% a quantity threshold, 10% a validity window, 20% "match the
basket's style", 30% a price cap; placements mixed. Baskets are real orders of the sample world
(its purchases, one basket per order, taken in order) and random 1-8 item baskets for ``wide``.
Each ``match`` call is timed alone with ``perf_counter_ns`` on one thread; the first 200 calls
warm up and are dropped. Also: latency against the number of rules (1k..30k), the effect of
``max_fired`` (default 20 vs unbounded), and compile time.

Part 2 (quality, held-out): the sample world's orders are split by time at the 80% quantile.
Rules are mined (``mine_suggestions``) from the purchases before the cut only; every later
*project* order that left accessories out (ground truth ``forgotten_categories``) is matched at
checkout, and the first k fired rules' accessory categories are compared with what the shopper
forgot: category recall@k and slot precision@k (share of shown categories that were forgotten).
Baseline: the k categories most often in the same order with the basket's categories (the
"bought together" statistic, from the same training orders), basket categories excluded.
The default merchandiser rules are shown for reference only: they encode the same accessory map
the sample world draws from, so their figures are circular.

Writes README.md and two PNG plots into ``--out``. The machine is shared; the report records
the load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recsys.data.catalog import Catalog, validate_catalog  # noqa: E402
from recsys.recommendation import NO_STYLE, StyleReading  # noqa: E402
from recsys.rules.engine import RuleEngine  # noqa: E402
from recsys.rules.model import Rule, parse_rule  # noqa: E402

PAGES = ("checkout", "cart", "product")


@dataclass
class Result:
    name: str
    n_rules: int
    max_fired: int
    p50_us: float
    p99_us: float
    cpu_p50_us: float
    cpu_p99_us: float
    mean_us: float
    max_us: float
    fired_mean: float
    compile_s: float


def random_rules(catalog: Catalog, n: int, rng: np.random.Generator) -> list[Rule]:
    cats = list(catalog.categories)
    skus = catalog.ids.to_list()
    materials = [m for m in catalog.frame["material"].dropna().unique().tolist() if m]
    styles = list(catalog.taxonomy.slugs)
    out = []
    for i in range(n):
        kind = rng.random()
        trigger: dict = {}
        if kind < 0.70:
            trigger["categories"] = list(
                rng.choice(cats, size=int(rng.integers(1, 4)), replace=False)
            )
        elif kind < 0.85:
            trigger["skus"] = list(rng.choice(skus, size=int(rng.integers(1, 4)), replace=False))
        elif kind < 0.95 and materials:
            trigger["attributes"] = [{"key": "material", "value": str(rng.choice(materials))}]
        else:
            trigger["match"] = "all"
            trigger["categories"] = list(rng.choice(cats, size=2, replace=False))
        if rng.random() < 0.10:
            trigger["min_quantity"] = int(rng.integers(2, 5))
        if rng.random() < 0.05:
            trigger["styles"] = [str(rng.choice(styles))]
        constraints: dict = {"match_style": bool(rng.random() < 0.2)}
        if rng.random() < 0.3:
            constraints["max_price"] = float(rng.choice([10, 25, 50, 100]))
        doc = {
            "id": f"r{i}",
            "name": f"rule {i}",
            "priority": int(rng.integers(0, 100)),
            "placements": list(rng.choice(PAGES, size=int(rng.integers(1, 4)), replace=False)),
            "trigger": trigger,
            "suggest": {
                "categories": list(rng.choice(cats, size=int(rng.integers(1, 4)), replace=False)),
                "max_items": int(rng.integers(1, 4)),
                "constraints": constraints,
            },
        }
        if rng.random() < 0.25:
            doc["unless"] = [str(rng.choice(cats))]
        if rng.random() < 0.10:
            doc["valid_from"] = "2020-01-01T00:00:00Z"
            doc["valid_to"] = "2030-01-01T00:00:00Z"
        out.append(parse_rule(doc))
    return out


def wide_catalog(n_items: int, n_cats: int, rng: np.random.Generator) -> Catalog:
    materials = ["metal", "oak", "glass", "ceramic", "linen", "plastic", "steel", "rattan"]
    styles = [
        "loft",
        "scandinavian",
        "classic",
        "modern",
        "provence",
        "minimalism",
        "boho",
        "art-deco",
    ]
    frame = pd.DataFrame(
        {
            "sku": [f"W{i:06d}" for i in range(n_items)],
            "title": [f"item {i}" for i in range(n_items)],
            "category": [f"cat-{c}" for c in rng.integers(0, n_cats, n_items)],
            "price": np.round(rng.lognormal(3, 1, n_items), 2),
            "in_stock": rng.random(n_items) < 0.9,
            "styles": [
                styles[s] if rng.random() < 0.5 else "" for s in rng.integers(0, 8, n_items)
            ],
            "material": [materials[m] for m in rng.integers(0, len(materials), n_items)],
        }
    )
    return validate_catalog(frame, "<wide>")


def time_matches(
    engine: RuleEngine, baskets: list[tuple[list[int], list[int]]], styles: list[StyleReading]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Wall-clock and on-CPU (this thread) microseconds per call, warm-up dropped."""
    lat = np.empty(len(baskets), dtype=np.float64)
    cpu = np.empty(len(baskets), dtype=np.float64)
    fired = 0
    for i, (rows, qty) in enumerate(baskets):
        page = "checkout" if i % 3 else "cart"
        c0 = time.thread_time_ns()
        t0 = time.perf_counter_ns()
        out = engine.match(rows, qty, styles[i % len(styles)], page)
        lat[i] = (time.perf_counter_ns() - t0) / 1e3
        cpu[i] = (time.thread_time_ns() - c0) / 1e3
        fired += len(out)
    return lat[200:], cpu[200:], fired / len(baskets)


def sample_baskets(world, n: int) -> list[tuple[list[int], list[int]]]:
    buys = world.interactions.purchases()
    rows = world.interactions.item_rows(world.catalog)[buys.index.to_numpy()]
    frame = pd.DataFrame(
        {"order": buys["order_id"].to_numpy(), "row": rows, "qty": buys["quantity"].to_numpy()}
    )
    frame = frame[frame["row"] >= 0].drop_duplicates(["order", "row"])
    out = []
    for _, g in frame.groupby("order", sort=False):
        out.append((g["row"].tolist(), g["qty"].tolist()))
        if len(out) >= n:
            break
    return out


def run(
    name: str, catalog: Catalog, baskets, n_rules: int, max_fired: int, rng
) -> tuple[Result, np.ndarray]:
    rules = random_rules(catalog, n_rules, rng)
    t0 = time.perf_counter()
    engine = RuleEngine.compile(rules, catalog, max_fired=max_fired)
    compile_s = time.perf_counter() - t0
    styles = [NO_STYLE] + [
        StyleReading(top=s, confidence=0.8, distribution={s: 0.8})
        for s in catalog.taxonomy.slugs[:4]
    ]
    lat, cpu, fired = time_matches(engine, baskets, styles)
    res = Result(
        name,
        n_rules,
        max_fired,
        float(np.median(lat)),
        float(np.percentile(lat, 99)),
        float(np.median(cpu)),
        float(np.percentile(cpu, 99)),
        float(lat.mean()),
        float(lat.max()),
        fired,
        compile_s,
    )
    print(
        f"{name:7s} rules={n_rules:6d} max_fired={max_fired:5d}  p50={res.p50_us:7.1f}us  "
        f"p99={res.p99_us:7.1f}us  cpu p50={res.cpu_p50_us:7.1f}us cpu p99={res.cpu_p99_us:7.1f}us  "
        f"fired/basket={fired:5.1f}  compile={compile_s:5.1f}s",
        flush=True,
    )
    return res, lat


def quality(world, ks: tuple[int, ...] = (1, 3, 5)) -> list[tuple[str, int, float, float, int]]:
    """(method, k, category recall@k, slot precision@k, n orders) on held-out project orders."""
    from recsys.data.interactions import Interactions
    from recsys.rules.mining import mine_suggestions
    from recsys.rules.rules_file import default_rules

    inter = world.interactions
    cut = inter.frame["ts"].quantile(0.8)
    train, _ = inter.split_at(cut)
    mined = mine_suggestions(world.catalog, train)
    engines = {
        "mined rules (train period)": RuleEngine.compile(
            [s.to_rule() for s in mined], world.catalog, max_fired=100
        ),
        "default rules (circular)": RuleEngine.compile(
            default_rules(), world.catalog, max_fired=100
        ),
    }
    # same-order category co-occurrence from the training purchases
    buys = train.purchases()
    rows = Interactions(buys).item_rows(world.catalog)
    cats = np.where(rows >= 0, world.catalog.category_codes[np.maximum(rows, 0)], -1)
    pairs = pd.DataFrame({"o": buys["order_id"].to_numpy(), "c": cats})
    pairs = pairs[pairs["c"] >= 0].drop_duplicates()
    joined = pairs.merge(pairs, on="o")
    joined = joined[joined["c_x"] != joined["c_y"]]
    co = joined.groupby(["c_x", "c_y"]).size()
    gt = world.ground_truth
    test = gt[
        (gt["ts"] >= cut) & (gt["kind"] == "project") & (gt["forgotten_categories"].map(len) > 0)
    ]
    test_buys = inter.purchases()
    test_buys = test_buys[test_buys["order_id"].isin(set(test["order_id"]))]
    basket_of = {
        o: (g["sku"].tolist(), g["quantity"].tolist())
        for o, g in test_buys.groupby("order_id", sort=False)
    }
    names = world.catalog.categories
    out = []
    for k in ks:
        for method in [*engines, "bought together (category co-occurrence)"]:
            hit = shown = relevant = correct = n = 0
            for rec in test.itertuples(index=False):
                if rec.order_id not in basket_of:
                    continue
                skus, qty = basket_of[rec.order_id]
                brows = [world.catalog.ids.row(x) for x in skus]
                bcats = {int(world.catalog.category_codes[r]) for r in brows}
                if method in engines:
                    fired = engines[method].match(brows, qty, NO_STYLE, "checkout")
                    picked: list[str] = []
                    for f in fired:
                        for c in dict.fromkeys(
                            names[world.catalog.category_codes[r]] for r in f.candidate_rows
                        ):
                            if c not in picked:
                                picked.append(c)
                    picked = picked[:k]
                else:
                    scores: dict[int, float] = {}
                    for a in bcats:
                        if a in co.index.get_level_values(0):
                            for b, v in co.loc[a].items():
                                if b not in bcats:
                                    scores[int(b)] = scores.get(int(b), 0.0) + float(v)
                    picked = [names[b] for b, _ in sorted(scores.items(), key=lambda t: -t[1])[:k]]
                forgot = set(rec.forgotten_categories)
                n += 1
                relevant += len(forgot)
                hit += len(forgot & set(picked))
                shown += len(picked)
                correct += len(forgot & set(picked))
            out.append((method, k, hit / max(relevant, 1), correct / max(shown, 1), n))
            print(
                f"quality k={k} {method:42s} recall={out[-1][2]:.3f} precision={out[-1][3]:.3f} orders={n}",
                flush=True,
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--baskets", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("experiments/reports/rules"))
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    from recsys.sample_world import generate_world

    rng = np.random.default_rng(args.seed)
    world = generate_world(seed=args.seed, n_orders=20_000)
    sample_b = sample_baskets(world, args.baskets + 200)
    wide = wide_catalog(50_000, 1_000, rng)
    wide_b = []
    for _ in range(args.baskets + 200):
        size = int(rng.integers(1, 9))
        rows = rng.choice(len(wide), size=size, replace=False).tolist()
        wide_b.append((rows, rng.integers(1, 4, size).tolist()))

    results: list[Result] = []
    lats: dict[str, np.ndarray] = {}
    for name, cat, baskets in (("sample", world.catalog, sample_b), ("wide", wide, wide_b)):
        res, lat = run(name, cat, baskets, args.rules, 20, rng)
        results.append(res)
        lats[f"{name}, {args.rules:,} rules"] = lat
        results.append(run(name, cat, baskets, args.rules, 10_000, rng)[0])
        for n in (1_000, 3_000, 30_000):
            results.append(run(name, cat, baskets, n, 20, rng)[0])

    qual = [] if args.skip_quality else quality(world)
    args.out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, lat in lats.items():
        xs = np.sort(lat)
        ax.plot(xs, np.arange(1, len(xs) + 1) / len(xs), label=label)
    ax.axvline(1000, color="red", ls="--", lw=1, label="1 ms target")
    ax.set_xscale("log")
    ax.set_xlabel("match() latency per basket (µs, log)")
    ax.set_ylabel("fraction of baskets")
    ax.set_title("Rule matching latency (max_fired=20, one thread)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "latency_cdf.png", dpi=120)

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, color in (("sample", "tab:blue"), ("wide", "tab:green")):
        pts = sorted(
            (r.n_rules, r.p50_us, r.p99_us, r.cpu_p99_us)
            for r in results
            if r.name == name and r.max_fired == 20
        )
        xs = [p[0] for p in pts]
        ax.plot(xs, [p[1] for p in pts], "o-", color=color, label=f"{name} p50")
        ax.plot(xs, [p[3] for p in pts], "s-", color=color, alpha=0.6, label=f"{name} p99 on-CPU")
        ax.plot(
            xs,
            [p[2] for p in pts],
            "x:",
            color=color,
            alpha=0.6,
            label=f"{name} p99 wall (shared machine)",
        )
    ax.axhline(1000, color="red", ls="--", lw=1, label="1 ms target")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of rules")
    ax.set_ylabel("µs per basket (log)")
    ax.set_title("Latency against the number of rules (max_fired=20)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "latency_vs_rules.png", dpi=120)

    load = os.getloadavg()
    lines = [
        "# Rule matching benchmark",
        "",
        f"`python -m experiments.bench_rules --rules {args.rules} --baskets {args.baskets} --seed {args.seed}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared "
        f"(load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}); one thread; "
        f"{args.baskets} timed baskets per row after 200 warm-up calls.",
        "",
        "- `sample`: sample world catalogue (4,000 SKUs, ~40 categories), baskets = its real orders. "
        "Dense worst case: each basket category triggers hundreds of rules.",
        "- `wide`: synthetic 50,000 SKUs in 1,000 categories, random 1-8 item baskets.",
        "- `max_fired`: the engine stops after this many fired rules (checkout has a few slots); "
        "10,000 = unbounded, to show what the cap buys.",
        "",
        "On this shared 2-core machine a busy moment can push wall-clock p99 to several ms through "
        "time slices given to other processes (earlier runs at load 6-8 did, at every rule count); "
        "the on-CPU columns (`time.thread_time_ns`, this thread only) show the engine's own cost.",
        "",
        "| catalogue | rules | max_fired | p50 µs | p99 µs | on-CPU p50 µs | on-CPU p99 µs | mean µs | max µs | fired / basket | compile s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.n_rules:,} | {r.max_fired:,} | {r.p50_us:.1f} | {r.p99_us:.1f} | "
            f"{r.cpu_p50_us:.1f} | {r.cpu_p99_us:.1f} | "
            f"{r.mean_us:.1f} | {r.max_us:.0f} | {r.fired_mean:.1f} | {r.compile_s:.2f} |"
        )
    lines += [
        "",
        "![latency CDF](latency_cdf.png)",
        "",
        "![latency vs rules](latency_vs_rules.png)",
        "",
        "How it is fast: rules are compiled into inverted indexes per page (category code -> rule "
        "ids, item row -> rule ids for SKU triggers, attribute (key, value) -> rule ids), candidate rules are checked in "
        "priority order and matching stops after `max_fired` fired; each rule's suggestion is "
        "precomputed as row arrays already filtered by stock and price, so a fired rule costs a "
        "few array slices (style mask, basket exclusion). Max latency includes GC pauses and "
        "the shared machine.",
    ]
    if qual:
        lines += [
            "",
            "## Quality on held-out orders (sample world, 20,000 project orders, seed 7)",
            "",
            "Split by time at the 80% quantile of events; rules mined from the earlier purchases only; "
            "evaluated on every later project order that left accessories out. Recall@k = forgotten "
            "categories among the first k accessory categories shown / all forgotten categories; "
            "precision@k = shown categories that were forgotten / shown. Category level: which SKU "
            "is shown is the recommender's choice (see experiments/reports/offline_eval for SKU-level "
            "accessory recall with the ranker).",
            "",
            "| method | k | category recall@k | slot precision@k | orders |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for method, k, rec, prec, n in qual:
            lines.append(f"| {method} | {k} | {rec:.3f} | {prec:.3f} | {n} |")
        lines += [
            "",
            "Reading it: in the sample world every accessory a project needs and the order lacks "
            "counts as forgotten, so a rule naming a true accessory (with `skip_if_in_basket`, the "
            "default) is never wrong at category level: the default rules' precision of 1.0 is the "
            "circularity, not skill. The mined rules' precision below 1 comes from pairs that are "
            "project companions rather than accessories (e.g. two tile types); the baseline's lower "
            "precision from the same kind of companions, ranked by raw co-occurrence.",
        ]
    (args.out / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}/README.md")


if __name__ == "__main__":
    main()
