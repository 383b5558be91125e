"""A short profile of the training data, logged with every run so a data scientist can see
what the model learned from (and spot a broken export) without opening the files."""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.data import Catalog, Interactions


def profile_data(catalog: Catalog, interactions: Interactions) -> dict[str, Any]:
    """Counts, shares and ranges of the catalog and the events (JSON-ready values)."""
    cat = catalog.frame
    ev = interactions.frame
    purchases = ev[ev["event"] == "purchase"]
    basket_sizes = purchases.groupby("order_id")["sku"].nunique() if len(purchases) else None
    bought = set(purchases["sku"].unique()) if len(purchases) else set()
    prof: dict[str, Any] = {
        "catalog": {
            "items": int(len(cat)),
            "categories": len(catalog.categories),
            "share_items_with_category": _share(cat["category"].notna().sum(), len(cat)),
            "styles_in_taxonomy": len(catalog.taxonomy),
            "share_items_style_tagged": _share(sum(1 for s in cat["styles"] if s), len(cat)),
            "share_in_stock": _share(int(cat["in_stock"].sum()), len(cat)),
            "price": _quantiles(cat["price"].to_numpy(np.float64)),
        },
        "interactions": {
            "events": int(len(ev)),
            "events_by_type": {str(k): int(v) for k, v in ev["event"].value_counts().items()},
            "users": int(ev["user_id"].dropna().nunique()),
            "share_guest_events": _share(int(ev["user_id"].isna().sum()), len(ev)),
            "orders": int(purchases["order_id"].nunique()),
            "first_ts": ev["ts"].min().isoformat() if len(ev) else None,
            "last_ts": ev["ts"].max().isoformat() if len(ev) else None,
            "basket_size": (
                _quantiles(basket_sizes.to_numpy(np.float64)) if basket_sizes is not None else None
            ),
            "share_items_ever_bought": _share(len(bought), len(cat)),
        },
    }
    if catalog.has_categories and len(purchases):
        by_cat = purchases["sku"].map(dict(zip(cat["sku"], cat["category"], strict=True)))
        top = by_cat.value_counts().head(10)
        prof["interactions"]["top_categories_by_purchase_lines"] = {
            str(k): int(v) for k, v in top.items()
        }
    return prof


def profile_markdown(profile: dict[str, Any]) -> str:
    """The profile as a Markdown page (two tables)."""
    lines = ["# Training data profile", ""]
    for section in ("catalog", "interactions"):
        lines += [f"## {section.capitalize()}", "", "| field | value |", "| --- | --- |"]
        for key, value in profile[section].items():
            lines.append(f"| {key} | {_fmt(value)} |")
        lines.append("")
    return "\n".join(lines)


def _share(part: int | float, whole: int) -> float:
    return round(float(part) / whole, 4) if whole else 0.0


def _quantiles(values: np.ndarray) -> dict[str, float] | None:
    if values.size == 0:
        return None
    q = np.quantile(values, [0.0, 0.5, 0.9, 1.0])
    return {"min": float(q[0]), "median": float(q[1]), "p90": float(q[2]), "max": float(q[3])}


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
