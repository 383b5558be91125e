"""Views and add-to-carts around purchases, and browse-only sessions: views > carts > purchases.

Every purchase line is carted shortly before checkout; main items were viewed along with a
few style-conditioned alternatives from the same category (some carted and dropped);
accessories are seldom viewed. Browse-only sessions view and sometimes cart without buying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.sample_world.orders import DAY, ROLE_MAIN, OrderDraw, Samplers
from recsys.sample_world.vocabulary import CATEGORIES, PROJECTS, STYLES

VIEW, CART, PURCHASE = 0, 1, 2
EVENT_NAMES = ("view", "add_to_cart", "purchase")
ALTERNATIVE_VIEWS = 3.0  # mean alternatives viewed per main item bought
ALTERNATIVE_CART_RATE = 0.2
ACCESSORY_VIEW_RATE = 0.3
BROWSE_SESSIONS_PER_ORDER = 0.3
BROWSE_REGISTERED_SHARE = 0.6


@dataclass(frozen=True)
class EventDraw:
    """Events (n,): session (orders first, then browse sessions), item, qty, t (s), kind.

    Browse sessions (n_browse,): browse_shopper (-1 = anonymous guest), browse_t.
    """

    session: np.ndarray
    item: np.ndarray
    qty: np.ndarray
    t: np.ndarray
    kind: np.ndarray
    browse_shopper: np.ndarray
    browse_t: np.ndarray


def draw_events(orders: OrderDraw, samplers: Samplers, rng: np.random.Generator) -> EventDraw:
    n_styles = len(STYLES)
    n_orders = len(orders.t)
    lo, li, lq = orders.line_order, orders.line_item, orders.line_qty
    lt = orders.t[lo]
    parts: list[tuple[np.ndarray, ...]] = []

    def add(
        session: np.ndarray, item: np.ndarray, qty: np.ndarray, t: np.ndarray, kind: int
    ) -> None:
        parts.append((session, item, qty, t, np.full(len(session), kind, dtype=np.int8)))

    add(lo, li, lq, lt, PURCHASE)
    add(lo, li, lq, lt - rng.uniform(60, 1200, len(lo)), CART)
    seen = (orders.line_role == ROLE_MAIN) | (rng.random(len(lo)) < ACCESSORY_VIEW_RATE)
    add(
        lo[seen],
        li[seen],
        np.ones(int(seen.sum()), np.int64),
        lt[seen] - rng.uniform(1200, 3600, int(seen.sum())),
        VIEW,
    )

    main = orders.line_role == ROLE_MAIN
    k = rng.poisson(ALTERNATIVE_VIEWS, int(main.sum()))
    a_order = np.repeat(lo[main], k)
    a_cat = np.repeat(samplers.category_of_row[li[main]], k)
    a_item = samplers.styled.draw(a_cat * n_styles + orders.style[a_order], rng)
    a_t = orders.t[a_order] - rng.uniform(1200, 7200, len(a_order))
    add(a_order, a_item, np.ones(len(a_order), np.int64), a_t, VIEW)
    carted = rng.random(len(a_order)) < ALTERNATIVE_CART_RATE
    add(
        a_order[carted],
        a_item[carted],
        np.ones(int(carted.sum()), np.int64),
        a_t[carted] + rng.uniform(30, 300, int(carted.sum())),
        CART,
    )

    n_browse = int(round(BROWSE_SESSIONS_PER_ORDER * int((orders.follow_up_of < 0).sum())))
    registered = rng.random(n_browse) < BROWSE_REGISTERED_SHARE
    b_shopper = np.where(registered, rng.integers(0, orders.n_users, n_browse), -1)
    b_style = np.where(
        registered, orders.primary[np.maximum(b_shopper, 0)], rng.integers(0, n_styles, n_browse)
    )
    b_t = rng.uniform(DAY, float(orders.t.max()), n_browse)
    slugs = [c.slug for c in CATEGORIES]
    main_cats = np.array(sorted({slugs.index(c) for p in PROJECTS for c in p.items}))
    b_cat = main_cats[rng.integers(0, len(main_cats), n_browse)]
    nv = 1 + rng.poisson(2.0, n_browse)
    v_session = np.repeat(np.arange(n_browse), nv)
    v_item = samplers.styled.draw(np.repeat(b_cat * n_styles + b_style, nv), rng)
    v_t = np.repeat(b_t, nv) + rng.uniform(0, 1800, len(v_session))
    add(n_orders + v_session, v_item, np.ones(len(v_session), np.int64), v_t, VIEW)
    vc = rng.random(len(v_session)) < 0.1
    add(
        n_orders + v_session[vc],
        v_item[vc],
        np.ones(int(vc.sum()), np.int64),
        v_t[vc] + rng.uniform(30, 300, int(vc.sum())),
        CART,
    )

    cols = list(zip(*parts, strict=True))
    return EventDraw(
        session=np.concatenate(cols[0]).astype(np.int64),
        item=np.concatenate(cols[1]).astype(np.int64),
        qty=np.concatenate(cols[2]).astype(np.int64),
        t=np.maximum(np.concatenate(cols[3]), 0.0),
        kind=np.concatenate(cols[4]),
        browse_shopper=b_shopper,
        browse_t=b_t,
    )
