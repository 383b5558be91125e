"""Build the generators' ``TrainingData`` from the data contracts (catalog + purchase events)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.candidates.base import TrainingData
from recsys.data.catalog import Catalog
from recsys.data.interactions import Interactions
from recsys.ids import IdIndex


def build_training_data(
    catalog: Catalog,
    interactions: Interactions,
    item_styles: np.ndarray | None = None,
    users: IdIndex | None = None,
) -> tuple[TrainingData, IdIndex]:
    """Orders x items purchase matrix (quantities summed; SKUs outside the catalog dropped),
    each order's user row (-1 guest or user outside ``users``) and first timestamp (epoch s).

    ``users`` defaults to the sorted distinct user ids of these purchases; it is returned so
    that serving maps a shopper to the same row. ``item_styles`` (n_items, n_styles) or None.
    """
    buys = interactions.purchases()
    rows = interactions.item_rows(catalog)[(interactions.frame["event"] == "purchase").to_numpy()]
    known = rows >= 0
    buys, rows = buys[known], rows[known]
    order_codes, order_ids = pd.factorize(buys["order_id"], sort=False)
    n_orders = len(order_ids)
    orders = sp.csr_matrix(
        (buys["quantity"].to_numpy(np.float32), (order_codes, rows)), shape=(n_orders, len(catalog))
    )
    orders.sum_duplicates()
    ts = buys["ts"].astype("int64").to_numpy() // 1_000_000_000
    order_ts = np.full(n_orders, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(order_ts, order_codes, ts)
    if users is None:
        users = IdIndex(sorted({u for u in buys["user_id"] if u is not None}))
    first = np.zeros(n_orders, np.int64)
    first[order_codes[::-1]] = np.arange(len(order_codes))[::-1]
    order_user_ids = buys["user_id"].to_numpy(object)[first]
    order_users = np.fromiter(
        (users.get(u) if u is not None else -1 for u in order_user_ids), np.int64, n_orders
    )
    data = TrainingData(
        orders=orders,
        order_users=order_users,
        order_ts=order_ts,
        n_users=len(users),
        item_category=catalog.category_codes.astype(np.int64),
        in_stock=catalog.in_stock,
        item_styles=item_styles,
        category_tag_share=catalog.category_tag_share(),
    )
    return data, users
