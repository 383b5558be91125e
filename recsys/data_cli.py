"""Data subcommands: ``recsys sample-data`` and ``recsys import-online-retail``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLE_HELP = """\
Generate the synthetic home-improvement world, deterministically from --seed.

Writes to DIR:
  catalog.parquet       SKUs with category, price, stock, color/material/finish/pattern,
                        open-ended attributes and style tags (finishing materials mostly untagged)
  interactions.parquet  views, add-to-carts and purchases (order_id, user_id or empty for guests)
  ground_truth.parquet  one row per order: the shopper's styles, the project, and which
                        accessories the order forgot (and the later order that bought them)
  item_styles.parquet   the true styles of every SKU, tagged or not (to score a style tagger)
  summary.json          the figures printed below

Example: recsys sample-data --seed 7 --out data/sample"""

IMPORT_HELP = """\
Convert the UCI Online Retail invoice lines (columns InvoiceNo, StockCode, Description,
Quantity, InvoiceDate, UnitPrice, CustomerID) into the project's contracts. IN is the file as
published, `Online Retail.xlsx` (UCI Machine Learning Repository, dataset 352, CC BY 4.0:
https://archive.ics.uci.edu/dataset/352/online+retail; unzip the download), or a Parquet/CSV
copy with the same columns. Reading the 23 MB workbook takes a minute or two; the Parquet it
writes loads in a second.

sku = StockCode, order_id = InvoiceNo, user_id = CustomerID (empty for guests; the invoice is
their session), every line a purchase. Cancellations, non-product codes (postage, fees,
manual adjustments...), zero or negative prices and lines without a description are dropped
and counted. Categories and styles are left empty rather than invented.

Writes DIR/catalog.parquet, DIR/interactions.parquet and DIR/import_report.json.

Example: recsys import-online-retail "data/Online Retail.xlsx" --out data/online-retail"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sample-data`` and ``import-online-retail`` to the ``recsys`` command."""
    from recsys.sample_world import DEFAULT_ORDERS, DEFAULT_SKUS

    p = subparsers.add_parser(
        "sample-data",
        help="generate the synthetic sample world (catalog, events, ground truth)",
        description=SAMPLE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--orders",
        type=_positive_int,
        default=DEFAULT_ORDERS,
        metavar="N",
        help=f"project orders to draw (default: {DEFAULT_ORDERS:,}); follow-up orders "
        "and browse sessions come on top. 200,000 gives ~5M events",
    )
    p.add_argument(
        "--skus",
        type=_positive_int,
        default=DEFAULT_SKUS,
        metavar="N",
        help=f"catalog size (default: {DEFAULT_SKUS:,}; at least 123)",
    )
    p.add_argument(
        "--partitioned",
        action="store_true",
        help="also write the events as Parquet partitioned by day, "
        "DIR/interactions/date=YYYY-MM-DD/part-*.parquet (the layout `recsys train --engine "
        "spark` and the in-process engine read lazily)",
    )
    p.set_defaults(handler=run_sample_data)

    q = subparsers.add_parser(
        "import-online-retail",
        help="convert the UCI Online Retail file into catalog + interactions",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument(
        "input",
        type=Path,
        metavar="IN",
        help="Online Retail file (.xlsx as published, .parquet or .csv)",
    )
    q.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    q.add_argument(
        "--partitioned",
        action="store_true",
        help="also write the events as Parquet partitioned by day, "
        "DIR/interactions/date=YYYY-MM-DD/part-*.parquet (the layout `recsys train --engine "
        "spark` and the in-process engine read lazily)",
    )
    q.set_defaults(handler=run_import_online_retail)


def run_sample_data(args: argparse.Namespace) -> int:
    from recsys.sample_world import generate_world

    started = time.perf_counter()
    try:
        world = generate_world(seed=args.seed, n_orders=args.orders, n_skus=args.skus)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    world.save(args.out)
    if args.partitioned:
        world.interactions.save_partitioned(args.out / "interactions")
    s = world.summary
    seconds = time.perf_counter() - started
    tagged = ", ".join(f"{f} {v:.0%}" for f, v in s["tagged_share_by_family"].items())
    ev = s["events"]
    print(f"sample world (seed {s['seed']}) written to {args.out} in {seconds:.1f} s")
    print(f"  SKUs          {s['skus']:,} in {s['categories']} categories, {s['styles']} styles")
    print(
        f"  orders        {s['orders']:,} ({s['project_orders']:,} projects, "
        f"{s['follow_up_orders']:,} follow-ups), guests {s['guest_order_share']:.0%}, "
        f"registered users {s['registered_users']:,}"
    )
    print(
        f"  interactions  {s['interactions']:,} (views {ev['view']:,}, carts "
        f"{ev['add_to_cart']:,}, purchases {ev['purchase']:,}), "
        f"browse-only sessions {s['browse_sessions']:,}"
    )
    print(f"  tagged        {s['tagged_share']:.0%} overall; {tagged}")
    print(
        f"  forgotten     {s['forget_rate']:.1%} of {s['accessories_needed']:,} needed "
        f"accessories (per kind {s['forget_probability_range'][0]:.0%}-"
        f"{s['forget_probability_range'][1]:.0%}); "
        f"{s['forgotten_bought_later_share']:.0%} bought later within "
        f"{s['return_within_days']} days"
    )
    return 0


def run_import_online_retail(args: argparse.Namespace) -> int:
    from recsys.online_retail import import_online_retail

    started = time.perf_counter()
    catalog, interactions, report = import_online_retail(args.input)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    catalog.save(out / "catalog.parquet")
    interactions.save(out / "interactions.parquet")
    if args.partitioned:
        interactions.save_partitioned(out / "interactions")
    data = report.to_dict()
    (out / "import_report.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"imported {args.input} into {out} in {time.perf_counter() - started:.1f} s")
    for line in report.lines():
        print(f"  {line}")
    return 0
