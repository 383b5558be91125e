"""Build the generators' ``TrainingData`` from the data contracts (catalog + purchase events)."""

from __future__ import annotations

import numpy as np

from recsys.candidates.base import TrainingData
from recsys.data.catalog import Catalog
from recsys.data.interactions import Interactions
from recsys.data.orders import OrderTable, build_orders
from recsys.engine.aggregates import EngineWindow
from recsys.ids import IdIndex


def training_data_from_orders(
    catalog: Catalog,
    orders: OrderTable,
    users: IdIndex,
    item_styles: np.ndarray | None = None,
    engine_window: EngineWindow | None = None,
) -> TrainingData:
    """What the generators learn from ``orders``: each order's user row (-1 guest or user
    outside ``users``), its first timestamp, and the catalog's categories and stock.
    ``item_styles`` (n_items, n_styles) or None; ``engine_window`` the aggregation
    engine and the window of ``orders`` it computes the aggregates and popularity of (None:
    computed in process when first needed)."""
    order_users = np.fromiter(
        (users.get(u) if u is not None else -1 for u in orders.user_ids), np.int64, len(orders)
    )
    return TrainingData(
        orders=orders.matrix,
        order_users=order_users,
        order_ts=orders.ts,
        n_users=len(users),
        item_category=catalog.category_codes.astype(np.int64),
        in_stock=catalog.in_stock,
        item_styles=item_styles,
        category_tag_share=catalog.category_tag_share(),
        engine_window=engine_window,
    )


def build_training_data(
    catalog: Catalog,
    interactions: Interactions,
    item_styles: np.ndarray | None = None,
    users: IdIndex | None = None,
) -> tuple[TrainingData, IdIndex]:
    """Orders x items purchase matrix (``recsys.data.orders.build_orders``) with each order's
    user row and first timestamp (epoch s).

    ``users`` defaults to the sorted distinct user ids of these purchases; it is returned so
    that serving maps a shopper to the same row."""
    orders = build_orders(interactions, catalog)
    if users is None:
        users = IdIndex(sorted({u for u in orders.user_ids if u is not None}))
    return training_data_from_orders(catalog, orders, users, item_styles), users
