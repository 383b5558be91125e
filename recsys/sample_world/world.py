"""The sample world: catalog, interactions and the ground truth that scores style inference and
accessory completion, generated deterministically from one seed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.catalog import Catalog, load_catalog
from recsys.data.errors import DataContractError
from recsys.data.interactions import Interactions, load_interactions
from recsys.data.tables import read_table
from recsys.data.taxonomy import StyleTaxonomy
from recsys.sample_world.catalog import draw_catalog
from recsys.sample_world.events import EVENT_NAMES, draw_events
from recsys.sample_world.orders import OrderDraw, build_samplers, draw_orders
from recsys.sample_world.vocabulary import (
    CATEGORIES,
    FAMILIES,
    FORGET_PROBABILITY,
    FORGET_RANGE,
    PROJECTS,
    RETURN_WITHIN_DAYS,
    STYLES,
)

WORLD_START = pd.Timestamp("2025-01-01T00:00:00Z")
DEFAULT_ORDERS = 50_000
DEFAULT_SKUS = 4_000


@dataclass(frozen=True)
class World:
    """A generated world.

    ground_truth: one row per order (order_id, user_id, ts, kind 'project'|'follow-up',
    project, follow_up_of, shopper_styles, order_style, forgotten_categories, forgotten_skus,
    forgotten_bought_in: the follow-up order id of each forgotten SKU, or None).
    item_styles: one row per SKU (sku, family, true_styles, tagged): the styles an untagged SKU
    really has, to score a style tagger. summary: the figures ``recsys sample-data`` prints.
    """

    catalog: Catalog
    interactions: Interactions
    ground_truth: pd.DataFrame
    item_styles: pd.DataFrame
    summary: dict[str, Any]

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write catalog/interactions/ground_truth/item_styles .parquet and summary.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            name: out / f"{name}.parquet"
            for name in ("catalog", "interactions", "ground_truth", "item_styles")
        }
        self.catalog.save(paths["catalog"])
        self.interactions.save(paths["interactions"])
        self.ground_truth.to_parquet(paths["ground_truth"], index=False)
        self.item_styles.to_parquet(paths["item_styles"], index=False)
        paths["summary"] = out / "summary.json"
        paths["summary"].write_text(json.dumps(self.summary, indent=2, sort_keys=True) + "\n")
        return paths

    @classmethod
    def load(cls, out_dir: str | Path) -> World:
        """Read a saved world back; catalog and interactions are validated on load."""
        out = Path(out_dir)
        catalog = load_catalog(out / "catalog.parquet")
        interactions = load_interactions(out / "interactions.parquet", catalog=catalog)
        summary_path = out / "summary.json"
        if not summary_path.exists():
            raise DataContractError(str(summary_path), "file not found")
        return cls(
            catalog=catalog,
            interactions=interactions,
            ground_truth=read_table(out / "ground_truth.parquet"),
            item_styles=read_table(out / "item_styles.parquet"),
            summary=json.loads(summary_path.read_text()),
        )


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """Nanoseconds since the epoch, shape (n,), as a UTC ``datetime64[ns]`` index (no parsing)."""
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")


def _lists_by_order(n: int, order: np.ndarray, values: np.ndarray) -> list[list[Any]]:
    """Group ``values`` (shape (m,)) by ``order`` (ints < n) into n lists, stable."""
    out: list[list[Any]] = [[] for _ in range(n)]
    for o, v in zip(order.tolist(), values.tolist(), strict=True):
        out[o].append(v)
    return out


def generate_world(
    seed: int = 7,
    n_orders: int = DEFAULT_ORDERS,
    n_skus: int = DEFAULT_SKUS,
    taxonomy: StyleTaxonomy | None = None,
) -> World:
    """Generate the sample world.

    ``n_orders`` project orders are drawn; follow-up orders (forgotten accessories bought
    later) come on top, and browse-only sessions add views and carts (``summary`` has the
    counts; the default gives ~1.26M events). The catalog depends only on ``seed`` and
    ``n_skus``, so worlds of different sizes share it.
    """
    draw = draw_catalog(seed, n_skus, taxonomy)
    catalog = draw.catalog
    samplers = build_samplers(draw)
    orders = draw_orders(samplers, n_orders, np.random.default_rng([seed, 2]))
    events = draw_events(orders, samplers, np.random.default_rng([seed, 3]))

    n_all = len(orders.t)
    rank = np.argsort(orders.t, kind="stable")
    position = np.empty(n_all, dtype=np.int64)
    position[rank] = np.arange(n_all)
    width = max(7, len(str(n_all)))
    order_ids = np.array([f"O-{i + 1:0{width}d}" for i in range(n_all)], dtype=object)
    oid = order_ids[position]  # order index -> id
    n_browse = len(events.browse_t)
    session_ids = np.concatenate(
        [oid, np.array([f"S-{i + 1:0{width}d}" for i in range(n_browse)], dtype=object)]
    )
    user_strings = np.array(
        [f"U-{u + 1:06d}" for u in range(orders.n_users)] + [None], dtype=object
    )
    order_user = np.where(orders.shopper < orders.n_users, orders.shopper, orders.n_users)
    session_user = np.concatenate(
        [
            user_strings[order_user],
            user_strings[
                np.where(events.browse_shopper >= 0, events.browse_shopper, orders.n_users)
            ],
        ]
    )

    ts_ns = WORLD_START.value + np.round(events.t).astype(np.int64) * 1_000_000_000
    ev_order = np.argsort(ts_ns, kind="stable")
    skus = catalog.skus
    frame = pd.DataFrame(
        {
            "order_id": session_ids[events.session[ev_order]],
            "user_id": session_user[events.session[ev_order]],
            "sku": skus[events.item[ev_order]],
            "quantity": events.qty[ev_order],
            "ts": _utc(ts_ns[ev_order]),
            "event": np.array(EVENT_NAMES, dtype=object)[events.kind[ev_order]],
        }
    )
    interactions = Interactions(frame)

    slug_arr = np.array(STYLES, dtype=object)
    shopper_styles = [
        [STYLES[p]] if s < 0 else [STYLES[p], STYLES[s]]
        for p, s in zip(
            orders.primary[orders.shopper].tolist(),
            orders.secondary[orders.shopper].tolist(),
            strict=True,
        )
    ]
    all_cats = np.array([c.slug for c in CATEGORIES], dtype=object)
    f_cats = _lists_by_order(n_all, orders.forgot_order, all_cats[orders.forgot_category])
    f_skus = _lists_by_order(n_all, orders.forgot_order, skus[orders.forgot_item])
    bought_in = np.asarray(
        np.where(
            orders.forgot_return_order >= 0, oid[np.maximum(orders.forgot_return_order, 0)], None
        ),
        dtype=object,
    )
    f_back = _lists_by_order(n_all, orders.forgot_order, bought_in)
    order_ts = _utc(WORLD_START.value + np.round(orders.t).astype(np.int64) * 1_000_000_000)
    truth = (
        pd.DataFrame(
            {
                "order_id": oid,
                "user_id": user_strings[order_user],
                "ts": order_ts,
                "kind": np.where(orders.follow_up_of < 0, "project", "follow-up").astype(object),
                "project": np.array([p.slug for p in PROJECTS], dtype=object)[orders.project],
                "follow_up_of": np.where(
                    orders.follow_up_of >= 0, oid[np.maximum(orders.follow_up_of, 0)], None
                ),
                "shopper_styles": shopper_styles,
                "order_style": slug_arr[orders.style],
                "forgotten_categories": f_cats,
                "forgotten_skus": f_skus,
                "forgotten_bought_in": f_back,
            }
        )
        .iloc[rank]
        .reset_index(drop=True)
    )

    item_styles = draw.item_truth()
    summary = _summary(seed, n_orders, catalog, interactions, truth, item_styles, orders, n_browse)
    return World(catalog, interactions, truth, item_styles, summary)


def _summary(
    seed: int,
    n_orders: int,
    catalog: Catalog,
    interactions: Interactions,
    truth: pd.DataFrame,
    item_styles: pd.DataFrame,
    orders: OrderDraw,
    n_browse: int,
) -> dict[str, Any]:
    events = interactions.frame["event"].value_counts()
    tagged = item_styles.groupby("family")["tagged"].mean()
    n_forgot = len(orders.forgot_order)
    return {
        "seed": seed,
        "n_project_orders_requested": n_orders,
        "skus": len(catalog),
        "categories": len(catalog.categories),
        "styles": len(catalog.taxonomy),
        "orders": len(truth),
        "project_orders": int((truth["kind"] == "project").sum()),
        "follow_up_orders": int((truth["kind"] == "follow-up").sum()),
        "browse_sessions": n_browse,
        "registered_users": int(truth["user_id"].nunique()),
        "guest_order_share": round(float(truth["user_id"].isna().mean()), 4),
        "interactions": len(interactions),
        "events": {e: int(events.get(e, 0)) for e in EVENT_NAMES},
        "tagged_share_by_family": {f: round(float(tagged.get(f, 0.0)), 4) for f in FAMILIES},
        "tagged_share": round(float(item_styles["tagged"].mean()), 4),
        "accessories_needed": int(orders.n_needed),
        "accessories_forgotten": n_forgot,
        "forget_rate": round(n_forgot / max(orders.n_needed, 1), 4),
        "forget_probability_range": list(FORGET_RANGE),
        "forget_probability": dict(sorted(FORGET_PROBABILITY.items())),
        "forgotten_bought_later_share": round(
            float((orders.forgot_return_order >= 0).mean()) if n_forgot else 0.0, 4
        ),
        "return_within_days": RETURN_WITHIN_DAYS,
        "orders_with_forgotten": int((truth["forgotten_skus"].str.len() > 0).sum()),
        "first_ts": str(interactions.frame["ts"].min()),
        "last_ts": str(interactions.frame["ts"].max()),
    }
