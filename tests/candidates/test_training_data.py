"""build_training_data: the purchase matrix, users and timestamps from the data contracts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.candidates.training_data import build_training_data
from recsys.sample_world.world import generate_world


@pytest.fixture(scope="module")
def small_world():
    return generate_world(seed=3, n_orders=300, n_skus=400)


def test_matrix_matches_the_purchase_events(small_world) -> None:
    catalog, interactions = small_world.catalog, small_world.interactions
    data, users = build_training_data(catalog, interactions)
    buys = interactions.purchases()
    assert data.orders.shape == (buys["order_id"].nunique(), len(catalog))
    assert data.orders.sum() == pytest.approx(buys["quantity"].sum())
    assert data.n_items == len(catalog)
    np.testing.assert_array_equal(data.item_category, catalog.category_codes)
    np.testing.assert_array_equal(data.in_stock, catalog.in_stock)
    # one order checked by hand: its items, user and first timestamp
    oid = buys["order_id"].iloc[len(buys) // 2]
    lines = buys[buys["order_id"] == oid]
    i = list(pd.unique(buys["order_id"])).index(oid)
    got = set(data.orders[i].indices.tolist())
    assert got == {catalog.ids.row(s) for s in lines["sku"]}
    assert data.order_ts[i] == lines["ts"].min().value // 1_000_000_000
    user = lines["user_id"].iloc[0]
    assert data.order_users[i] == (users.row(user) if user is not None else -1)
    assert data.n_users == len(users) == buys["user_id"].dropna().nunique()
