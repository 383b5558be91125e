"""Figures, generation time and peak memory of the sample world.

Each measurement runs ``generate_world`` in a fresh child process so its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; the interpreter with numpy and
pandas imported is measured separately as the baseline. Writes
``experiments/reports/sample_world/README.md`` and two PNG plots.

Usage: OMP_NUM_THREADS=1 python experiments/sample_world_stats.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPORT_DIR = Path(__file__).parent / "reports" / "sample_world"

CHILD = """
import json, resource, sys, time
import numpy, pandas
from recsys.sample_world import generate_world
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
w = generate_world(seed=int(sys.argv[1]), n_orders=int(sys.argv[2]))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "base_mb": base / 1024,
                  "summary": w.summary}))
"""


def run_child(seed: int, n_orders: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(seed), str(n_orders)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def world_properties(seed: int) -> dict:
    """Statistical properties of the default world (the ones the tests assert, measured)."""
    import pandas as pd

    from recsys.sample_world import generate_world
    from recsys.sample_world.vocabulary import ACCESSORIES, FORGET_PROBABILITY

    w = generate_world(seed=seed)
    items = w.catalog.frame.merge(w.item_styles, on="sku")
    items["paintable"] = [bool(a.get("paintable", False)) for a in items["attributes"]]
    styled = items[items["family"] != "tools"]
    is_loft = np.array(["loft" in s for s in styled["true_styles"]])
    signals = {
        "grey/black/anthracite colour": styled["color"].isin(["grey", "black", "anthracite"]),
        "metal or metal-and-wood": styled["material"].isin(["metal", "metal and wood"]),
        "concrete or brick look": styled["pattern"].isin(["concrete look", "brick look"]),
        "white/light grey/natural colour": styled["color"].isin(["white", "light grey", "natural"]),
    }
    corr = {
        k: {"n": int(m.sum()), "p_loft": float(is_loft[m.to_numpy()].mean())}
        for k, m in signals.items()
    }

    p = (
        w.interactions.purchases()
        .merge(items[["sku", "category", "color", "paintable"]], on="sku")
        .merge(w.ground_truth[["order_id", "order_style", "kind"]], on="order_id")
    )
    p = p[p["kind"] == "project"]
    o = (
        p.assign(
            gt=(p["category"] == "porcelain-tile") & p["color"].isin(["grey", "anthracite"]),
            pw=(p["category"] == "wallpaper") & p["paintable"],
            t=p["category"] == "porcelain-tile",
            w=p["category"] == "wallpaper",
        )
        .groupby("order_id")
        .agg(
            style=("order_style", "first"),
            gt=("gt", "any"),
            pw=("pw", "any"),
            t=("t", "any"),
            w=("w", "any"),
        )
    )
    both = o[o["t"] & o["w"]]
    ex = both["gt"] & both["pw"]
    loft = both["style"] == "loft"

    truth = w.ground_truth[w.ground_truth["kind"] == "project"]
    cats_by_order = p.groupby("order_id")["category"].agg(set)
    observed = {}
    for acc, prob in sorted(FORGET_PROBABILITY.items()):
        triggers = {m for m, accs in ACCESSORIES.items() if acc in accs}
        needing = [oid for oid, cats in cats_by_order.items() if cats & triggers]
        sub = truth[truth["order_id"].isin(needing)]
        rate = sub["forgotten_categories"].apply(lambda c, a=acc: a in c).mean()
        observed[acc] = {"stated": prob, "observed": float(rate), "orders": len(sub)}
    return {
        "base_p_loft": float(is_loft.mean()),
        "p_loft_given": corr,
        "loft_example": {
            "orders_with_tile_and_wallpaper": int(len(both)),
            "loft_orders": int(loft.sum()),
            "share_loft": float(ex[loft].mean()),
            "share_other_styles": float(ex[~loft].mean()),
        },
        "forget_rates": observed,
        "shopper_two_styles_share": float((truth["shopper_styles"].str.len() == 2).mean()),
        "event_ts_span_days": float(
            (w.interactions.frame["ts"].max() - w.interactions.frame["ts"].min())
            / pd.Timedelta(days=1)
        ),
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=5, help="runs of the default world")
    ap.add_argument("--quick", action="store_true", help="skip the scaling runs")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recsys.sample_world import DEFAULT_ORDERS

    runs = [run_child(args.seed, DEFAULT_ORDERS) for _ in range(args.repeats)]
    secs = np.array([r["seconds"] for r in runs])
    peaks = np.array([r["peak_mb"] for r in runs])
    base = float(np.median([r["base_mb"] for r in runs]))
    summary = runs[0]["summary"]
    print(
        f"default world: median {np.median(secs):.2f} s, p99 {np.percentile(secs, 99):.2f} s "
        f"over {len(secs)} runs; peak RSS {np.median(peaks):.0f} MB "
        f"(interpreter + numpy/pandas alone {base:.0f} MB)"
    )

    sizes = [] if args.quick else [12_500, 25_000, 50_000, 100_000, 200_000]
    scaling = [(n, run_child(args.seed, n)) for n in sizes]
    for n, r in scaling:
        print(
            f"  n_orders {n:>7,}: {r['summary']['interactions']:>10,} events, "
            f"{r['seconds']:.1f} s, peak {r['peak_mb']:.0f} MB"
        )

    props = world_properties(args.seed)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "figures.json").write_text(
        json.dumps(
            {
                "summary": summary,
                "seconds": secs.tolist(),
                "peak_mb": peaks.tolist(),
                "baseline_mb": base,
                "scaling": [
                    (n, r["seconds"], r["peak_mb"], r["summary"]["interactions"])
                    for n, r in scaling
                ],
                "properties": props,
            },
            indent=2,
        )
        + "\n"
    )

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    fams = list(summary["tagged_share_by_family"])
    axes[0].bar(fams, [summary["tagged_share_by_family"][f] for f in fams], color="#557")
    axes[0].set_ylabel("share of SKUs with style tags")
    axes[0].set_title("Tagged SKUs by family")
    axes[0].tick_params(axis="x", rotation=30)
    fr = props["forget_rates"]
    names = list(fr)
    x = np.arange(len(names))
    axes[1].bar(x - 0.2, [fr[k]["stated"] for k in names], 0.4, label="stated")
    axes[1].bar(x + 0.2, [fr[k]["observed"] for k in names], 0.4, label="observed")
    axes[1].set_xticks(x, names, rotation=60, ha="right", fontsize=7)
    axes[1].set_title("Forget probability per accessory")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(REPORT_DIR / "tags_and_forget_rates.png", dpi=110)
    plt.close(fig)
    if scaling:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        ev = [r["summary"]["interactions"] / 1e6 for _, r in scaling]
        ax.plot(ev, [r["seconds"] for _, r in scaling], "o-", label="seconds")
        ax2 = ax.twinx()
        ax2.plot(ev, [r["peak_mb"] for _, r in scaling], "s--", color="C1", label="peak MB")
        ax.set_xlabel("events (millions)")
        ax.set_ylabel("generation seconds")
        ax2.set_ylabel("peak RSS (MB)")
        ax.set_title("Sample world generation cost vs size")
        fig.tight_layout()
        fig.savefig(REPORT_DIR / "scaling.png", dpi=110)
        plt.close(fig)

    write_readme(summary, secs, peaks, base, scaling, props)
    print(f"report written to {REPORT_DIR / 'README.md'}")
    return 0


def write_readme(summary, secs, peaks, base, scaling, props) -> None:
    ev = summary["events"]
    tag = summary["tagged_share_by_family"]
    lines = [
        "# Sample world: figures, generation time and memory",
        "",
        "Reproduce: `OMP_NUM_THREADS=1 .venv/bin/python experiments/sample_world_stats.py` "
        "(seed 7, default size; each timing in a fresh process on the shared 2-core dev "
        "machine, so other jobs add noise).",
        "",
        "## The default world (`recsys sample-data --seed 7`)",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| SKUs | {summary['skus']:,} |",
        f"| categories | {summary['categories']} |",
        f"| styles | {summary['styles']} |",
        f"| orders | {summary['orders']:,} ({summary['project_orders']:,} project orders + "
        f"{summary['follow_up_orders']:,} follow-ups buying forgotten accessories) |",
        f"| registered users / guest order share | {summary['registered_users']:,} / "
        f"{summary['guest_order_share']:.1%} |",
        f"| browse-only sessions | {summary['browse_sessions']:,} |",
        f"| interactions | {summary['interactions']:,} (views {ev['view']:,}, add-to-carts "
        f"{ev['add_to_cart']:,}, purchases {ev['purchase']:,}) |",
        f"| tagged share, overall | {summary['tagged_share']:.1%} |",
        "| tagged share by family | " + ", ".join(f"{f} {v:.1%}" for f, v in tag.items()) + " |",
        f"| accessories needed / forgotten | {summary['accessories_needed']:,} / "
        f"{summary['accessories_forgotten']:,} (forget rate {summary['forget_rate']:.1%}; "
        f"per kind stated {summary['forget_probability_range'][0]:.0%}-"
        f"{summary['forget_probability_range'][1]:.0%}) |",
        f"| forgotten accessories bought later (same shopper, <= "
        f"{summary['return_within_days']} days; a returning guest is anonymous) | "
        f"{summary['forgotten_bought_later_share']:.1%} |",
        f"| time span | {summary['first_ts']} .. {summary['last_ts']} |",
        "",
        "## Time and memory",
        "",
        f"- Generating the default world (in memory, without writing files): median "
        f"**{np.median(secs):.2f} s**, p99 {np.percentile(secs, 99):.2f} s over {len(secs)} runs.",
        f"- Peak RSS of the generating process: median **{np.median(peaks):.0f} MB**; the "
        f"interpreter with numpy and pandas imported is {base:.0f} MB of it.",
        "",
    ]
    if scaling:
        lines += [
            "Scaling (`--orders N`), one run each:",
            "",
            "| project orders | events | seconds | peak RSS MB |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {n:,} | {r['summary']['interactions']:,} | {r['seconds']:.1f} | "
            f"{r['peak_mb']:.0f} |"
            for n, r in scaling
        ]
        lines += ["", "![scaling](scaling.png)", ""]
    le = props["loft_example"]
    lines += [
        "## Statistical properties (default world)",
        "",
        f"- P(loft is a true style of a styled SKU) = {props['base_p_loft']:.2f} overall; given:",
    ]
    for k, v in props["p_loft_given"].items():
        lines.append(f"  - {k}: {v['p_loft']:.2f} (n = {v['n']})")
    lines += [
        f"- The defining example: of the {le['orders_with_tile_and_wallpaper']:,} project orders "
        f"holding both porcelain tile and wallpaper, {le['share_loft']:.0%} of the "
        f"{le['loft_orders']} loft ones hold *grey/anthracite porcelain tile and paintable "
        f"wallpaper*, against {le['share_other_styles']:.0%} of the other styles' ones.",
        f"- Shoppers mixing two styles: {props['shopper_two_styles_share']:.0%} of project "
        "orders' shoppers.",
        "- Forget rate per accessory (orders that needed it):",
        "",
        "| accessory | stated | observed | orders needing it |",
        "| --- | --- | --- | --- |",
    ]
    for k, v in props["forget_rates"].items():
        lines.append(f"| {k} | {v['stated']:.2f} | {v['observed']:.3f} | {v['orders']:,} |")
    lines += ["", "![tags and forget rates](tags_and_forget_rates.png)", ""]
    (REPORT_DIR / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
