"""``recsys style-report`` (tagging-quality report) and ``recsys style-infer`` (read a basket)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import yaml

from recsys.data.catalog import Catalog, load_catalog
from recsys.data.errors import DataContractError
from recsys.data.interactions import load_interactions
from recsys.data.orders import build_orders
from recsys.data.taxonomy import load_taxonomy
from recsys.style.basket import BasketStyleInferer
from recsys.style.item_model import ItemStyleModel

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = subparsers.add_parser(
        "style-report",
        help="fit the item style model and write the tagging-quality report",
        description="Fit the item style model on a catalog and its purchases, print a summary and "
        "write the products whose tag the model disagrees with (sku, title, tagged, predicted, "
        "confidence) to a CSV a merchandiser can work through.",
    )
    _data_arguments(report)
    report.add_argument("--out", required=True, type=Path, help="CSV file for the report")
    report.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="report a disagreement only when the model is at least this sure",
    )
    report.add_argument("--model-out", type=Path, help="also save the fitted model to this folder")
    report.set_defaults(handler=run_report)

    infer = subparsers.add_parser(
        "style-infer",
        help="print the style reading of a basket",
        description="Read the style of a basket of SKUs (fits the model, or loads --model).",
    )
    _data_arguments(infer)
    infer.add_argument(
        "--skus", required=True, help="comma-separated SKUs, each optionally SKU:QUANTITY"
    )
    infer.add_argument("--model", type=Path, help="folder of a saved style model (skips fitting)")
    infer.set_defaults(handler=run_infer)


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, type=Path, help="catalog CSV/Parquet")
    parser.add_argument("--interactions", type=Path, help="interactions CSV/Parquet (purchases)")
    parser.add_argument("--taxonomy", type=Path, help="style taxonomy YAML (default: bundled)")
    parser.add_argument(
        "--keywords",
        type=Path,
        help="YAML with a 'keywords' mapping style -> title words, used as tags "
        "where a product has none (e.g. for Online Retail)",
    )
    parser.add_argument("--seed", type=int, default=0)


def _fit(args: argparse.Namespace) -> tuple[ItemStyleModel, Catalog]:
    taxonomy = load_taxonomy(args.taxonomy) if args.taxonomy else None
    catalog = load_catalog(args.catalog, taxonomy)
    keywords = None
    if args.keywords:
        data = yaml.safe_load(args.keywords.read_text()) or {}
        keywords = data.get("keywords") if isinstance(data, dict) else None
        if not isinstance(keywords, dict) or not all(
            isinstance(v, list) and all(isinstance(w, str) for w in v) for v in keywords.values()
        ):
            raise DataContractError(
                str(args.keywords), "expected a 'keywords' mapping style -> list of words"
            )
    model_dir = getattr(args, "model", None)
    if model_dir:
        model = ItemStyleModel.load(model_dir)
        return model, catalog
    orders = None
    if args.interactions:
        interactions = load_interactions(args.interactions, catalog, unknown_skus="drop")
        orders = build_orders(interactions, catalog).matrix
    try:
        model = ItemStyleModel(keyword_seeds=keywords, seed=args.seed).fit(catalog, orders)
    except ValueError as exc:  # e.g. a keyword style the taxonomy does not know
        raise DataContractError(str(args.keywords or args.catalog), str(exc)) from exc
    return model, catalog


def run_report(args: argparse.Namespace) -> int:
    model, catalog = _fit(args)
    report = model.tag_disagreements(catalog, min_confidence=args.min_confidence)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report.to_csv(args.out, index=False)
    if args.model_out:
        model.save(args.model_out)
    s = model.summary_
    print(
        f"items: {s['n_items']}  tagged: {s['n_tagged']}  keyword-seeded: {s['n_keyword_seeded']}  "
        f"inferred: {s['n_inferred']}  style-neutral / no signal: {s['n_neutral']}"
    )
    print(f"model: {s['message']}")
    if model.learned_:
        styles = model.item_styles_.argmax(axis=1)
        counts = np.bincount(styles[~model.neutral_], minlength=len(model.taxonomy_))
        print(
            "items per top style: "
            + ", ".join(
                f"{slug} {c}" for slug, c in zip(model.taxonomy_.slugs, counts, strict=True)
            )
        )
    print(f"tag disagreements (confidence >= {args.min_confidence}): {len(report)} -> {args.out}")
    for rec in report.head(10).itertuples():
        print(
            f"  {rec.sku}  {rec.title!r}: tagged {rec.tagged}, model says {rec.predicted} ({rec.confidence:.2f})"
        )
    return 0


def run_infer(args: argparse.Namespace) -> int:
    model, catalog = _fit(args)
    skus, quantities = [], []
    for part in (p.strip() for p in args.skus.split(",")):
        if not part:
            continue
        sku, _, qty = part.partition(":")
        if qty and not qty.isdigit() or qty == "0":
            raise DataContractError(
                "--skus", f"quantity of {sku!r} must be a whole number > 0, got {qty!r}"
            )
        skus.append(sku)
        quantities.append(int(qty) if qty else 1)
    rows, unknown = catalog.ids.rows(skus)
    if unknown:
        raise DataContractError("--skus", f"not in the catalog: {', '.join(unknown)}")
    known = [q for s, q in zip(skus, quantities, strict=True) if s not in unknown]
    reading = BasketStyleInferer.from_model(model, catalog).infer(rows, np.asarray(known))
    print(reading.explanation)
    print(
        f"top: {reading.top or '-'}  second: {reading.second or '-'}  confidence: {reading.confidence:.2f}"
    )
    dist = sorted(reading.distribution.items(), key=lambda kv: -kv[1])
    print("distribution: " + (", ".join(f"{s} {p:.2f}" for s, p in dist if p >= 0.01) or "-"))
    for e in reading.evidence:
        print(f"  {e.style:<14} {e.weight:5.2f}  {e.sku}  {e.title}")
    return 0
