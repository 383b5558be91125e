"""A tiny world with a known answer: three styles, four categories, 5 items per (style,
category); every order holds one style only and complements pair up (category 0 with 1,
category 2 with 3), one item per category. So for a category-0 item in style s, the best
complement is a category-1 item of style s."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.candidates.base import CandidateQuery, TrainingData

N_STYLES, N_CATS, PER = 3, 4, 5
N_ITEMS = N_STYLES * N_CATS * PER
DAY = 86_400


def item_row(style: int, cat: int, j: int) -> int:
    return (style * N_CATS + cat) * PER + j


def make_world(seed: int = 0, n_orders: int = 600, n_users: int = 30) -> TrainingData:
    rng = np.random.default_rng(seed)
    user_style = np.arange(n_users) % N_STYLES
    rows, cols = [], []
    users = np.empty(n_orders, np.int64)
    for o in range(n_orders):
        u = int(rng.integers(n_users))
        users[o] = u if o % 4 else -1  # a quarter are guests
        s = int(user_style[u])
        pair = (0, 1) if rng.random() < 0.6 else (2, 3)
        cats = list(pair)
        if rng.random() < 0.3:  # sometimes the other pair's first category too
            cats.append(2 if pair == (0, 1) else 0)
        for c in cats:
            # skewed popularity inside each (style, category)
            j = int(min(rng.geometric(0.45) - 1, PER - 1))
            rows.append(o)
            cols.append(item_row(s, c, j))
    orders = sp.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(n_orders, N_ITEMS)
    )
    ts = (1_700_000_000 + np.sort(rng.integers(0, 200 * DAY, n_orders))).astype(np.int64)
    item_style = np.repeat(np.arange(N_STYLES), N_CATS * PER)
    item_cat = np.tile(np.repeat(np.arange(N_CATS), PER), N_STYLES).astype(np.int64)
    styles = np.full((N_ITEMS, N_STYLES), 0.05, np.float32)
    styles[np.arange(N_ITEMS), item_style] = 0.9
    styles += rng.uniform(0, 0.05, styles.shape).astype(np.float32)
    in_stock = np.ones(N_ITEMS, bool)
    in_stock[item_row(0, 1, 4)] = False
    return TrainingData(
        orders=orders,
        order_users=users,
        order_ts=ts,
        n_users=n_users,
        item_category=item_cat,
        in_stock=in_stock,
        item_styles=styles,
    )


@pytest.fixture(scope="session")
def world() -> TrainingData:
    return make_world()


def sample_queries(data: TrainingData, n: int = 12, seed: int = 1) -> list[CandidateQuery]:
    """Baskets of 1-3 items, some with a user and an exclude list, one empty basket."""
    rng = np.random.default_rng(seed)
    out = [CandidateQuery(rows=np.empty(0, np.int64), user_row=3)]
    for i in range(n - 1):
        basket = rng.choice(data.n_items, size=int(rng.integers(1, 4)), replace=False).astype(
            np.int64
        )
        exclude = rng.choice(data.n_items, size=int(rng.integers(0, 6)), replace=False).astype(
            np.int64
        )
        style = None
        if i % 2 and data.item_styles is not None:
            style = data.item_styles[basket].mean(axis=0)
        out.append(
            CandidateQuery(rows=basket, user_row=int(i % 5) - 1, exclude=exclude, style=style)
        )
    return out
