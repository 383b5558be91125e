"""Shoppers, their projects, the orders those projects produce and the accessories they forget.

A shopper has a latent style (a quarter mix two). Each project order picks its main items
style-conditioned (an item that truly fits the order's style is ``1 / OFF_STYLE_AFFINITY``
times likelier than one that does not, and ``MAIN_STYLE_NOISE`` of picks ignore style), adds
the accessories its main categories need, and leaves out each accessory with that kind's
forget probability. A forgotten accessory is often bought in a later, small order by the same
shopper within ``RETURN_WITHIN_DAYS``: the signal accessory-rule mining looks for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.sample_world.catalog import CatalogDraw
from recsys.sample_world.item_sampler import GroupedSampler
from recsys.sample_world.vocabulary import (
    ACCESSORIES,
    CATEGORIES,
    FORGET_PROBABILITY,
    PROJECTS,
    RETURN_PROBABILITY,
    RETURN_WITHIN_DAYS,
    STYLE_POPULARITY,
    STYLES,
)

GUEST_SHARE = 0.25
MIXED_STYLE_SHARE = 0.25
ORDERS_PER_USER = 2.5
OFF_STYLE_AFFINITY = 0.03
MAIN_STYLE_NOISE = 0.10
DAY = 86_400
YEAR_SECONDS = 365 * DAY

ROLE_MAIN, ROLE_ACCESSORY, ROLE_RETURN = 0, 1, 2


@dataclass(frozen=True)
class Samplers:
    """Item choice: ``styled`` groups are category * n_styles + style, ``popular`` categories."""

    styled: GroupedSampler
    popular: GroupedSampler
    category_of_row: np.ndarray  # (n_items,) int, index into CATEGORIES


def build_samplers(draw: CatalogDraw) -> Samplers:
    slugs = [c.slug for c in CATEGORIES]
    cat = np.array([slugs.index(c) for c in draw.catalog.frame["category"]])
    rows_by_cat = [np.flatnonzero(cat == c) for c in range(len(slugs))]
    styled_rows, styled_w = [], []
    for c, rows in enumerate(rows_by_cat):
        pop = draw.popularity[rows]
        neutral = CATEGORIES[c].family == "tools"
        for s in range(len(STYLES)):
            fit = (
                np.ones(len(rows))
                if neutral
                else np.where(draw.true_styles[rows, s], 1.0, OFF_STYLE_AFFINITY)
            )
            styled_rows.append(rows)
            styled_w.append(pop * fit)
    return Samplers(
        styled=GroupedSampler(styled_rows, styled_w),
        popular=GroupedSampler(rows_by_cat, [draw.popularity[r] for r in rows_by_cat]),
        category_of_row=cat,
    )


@dataclass(frozen=True)
class OrderDraw:
    """Every order (projects first, then follow-ups) and its purchase lines, unsorted.

    Per order (n_orders,): shopper, guest, project (index into PROJECTS), style (int),
    t (seconds from the world's start), follow_up_of (-1 for project orders).
    Per shopper (n_shoppers,): primary, secondary (-1 if none).
    Per line (n_lines,): line_order, line_item (catalog row), line_qty, line_role.
    Per forgotten accessory (n_forgotten,): forgot_order, forgot_item, forgot_category,
    forgot_return_order (-1 if never bought later).
    ``n_users``: shoppers below this index are registered users, the rest guests.
    """

    shopper: np.ndarray
    guest: np.ndarray
    project: np.ndarray
    style: np.ndarray
    t: np.ndarray
    follow_up_of: np.ndarray
    primary: np.ndarray
    secondary: np.ndarray
    n_users: int
    line_order: np.ndarray
    line_item: np.ndarray
    line_qty: np.ndarray
    line_role: np.ndarray
    forgot_order: np.ndarray
    forgot_item: np.ndarray
    forgot_category: np.ndarray
    forgot_return_order: np.ndarray
    n_needed: int


def _quantities(items: np.ndarray, samplers: Samplers, rng: np.random.Generator) -> np.ndarray:
    lo = np.array([c.quantity[0] for c in CATEGORIES])[samplers.category_of_row[items]]
    hi = np.array([c.quantity[1] for c in CATEGORIES])[samplers.category_of_row[items]]
    out: np.ndarray = rng.integers(lo, hi + 1).astype(np.int64)
    return out


def draw_orders(samplers: Samplers, n_orders: int, rng: np.random.Generator) -> OrderDraw:
    """Draw ``n_orders`` project orders and the follow-up orders of forgotten accessories."""
    if n_orders < 1:
        raise ValueError(f"n_orders must be >= 1, got {n_orders}")
    n_styles = len(STYLES)
    style_p = np.array([STYLE_POPULARITY[s] for s in STYLES])
    style_p /= style_p.sum()

    guest = rng.random(n_orders) < GUEST_SHARE
    n_reg = int((~guest).sum())
    n_users = max(1, int(round(n_reg / ORDERS_PER_USER)))
    activity = rng.lognormal(0.0, 0.9, n_users)
    shopper = np.empty(n_orders, dtype=np.int64)
    shopper[~guest] = rng.choice(n_users, size=n_reg, p=activity / activity.sum())
    shopper[guest] = n_users + np.arange(int(guest.sum()))
    n_shoppers = n_users + int(guest.sum())

    primary = rng.choice(n_styles, size=n_shoppers, p=style_p)
    mixed = rng.random(n_shoppers) < MIXED_STYLE_SHARE
    secondary = np.where(mixed, (primary + rng.integers(1, n_styles, n_shoppers)) % n_styles, -1)
    w_primary = rng.uniform(0.5, 0.8, n_shoppers)
    use_primary = (secondary[shopper] < 0) | (rng.random(n_orders) < w_primary[shopper])
    style = np.where(use_primary, primary[shopper], secondary[shopper])

    proj_p = np.array([p.popularity for p in PROJECTS])
    project = rng.choice(len(PROJECTS), size=n_orders, p=proj_p / proj_p.sum())
    t = rng.uniform(DAY, YEAR_SECONDS - RETURN_WITHIN_DAYS * DAY, n_orders)

    slugs = [c.slug for c in CATEGORIES]
    orders_l, items_l = [], []
    for p, spec in enumerate(PROJECTS):
        in_p = np.flatnonzero(project == p)
        cats = list(spec.items)
        probs = np.array([spec.items[c][0] for c in cats])
        incl = rng.random((len(in_p), len(cats))) < probs
        incl[~incl.any(axis=1), int(np.argmax(probs))] = True
        for j, c in enumerate(cats):
            _, lo, hi = spec.items[c]
            o = in_p[incl[:, j]]
            o = np.repeat(o, rng.integers(lo, hi + 1, len(o)))
            ci = slugs.index(c)
            items = samplers.styled.draw(ci * n_styles + style[o], rng)
            noisy = rng.random(len(o)) < MAIN_STYLE_NOISE
            items[noisy] = samplers.popular.draw(np.full(int(noisy.sum()), ci), rng)
            orders_l.append(o)
            items_l.append(items)
    main_order = np.concatenate(orders_l)
    main_item = np.concatenate(items_l)
    key = main_order * len(samplers.category_of_row) + main_item
    _, first = np.unique(key, return_index=True)
    first.sort()
    main_order, main_item = main_order[first], main_item[first]

    present = np.zeros((n_orders, len(slugs)), dtype=bool)
    present[main_order, samplers.category_of_row[main_item]] = True
    acc_slugs = sorted({a for accs in ACCESSORIES.values() for a in accs})
    trigger = np.zeros((len(slugs), len(acc_slugs)), dtype=np.int32)
    for main, accs in ACCESSORIES.items():
        for a in accs:
            trigger[slugs.index(main), acc_slugs.index(a)] = 1
    need = (present.astype(np.int32) @ trigger) > 0
    need_order, need_acc = np.nonzero(need)
    acc_cat = np.array([slugs.index(a) for a in acc_slugs])[need_acc]
    acc_item = samplers.popular.draw(acc_cat, rng)
    p_forget = np.array([FORGET_PROBABILITY[a] for a in acc_slugs])[need_acc]
    forgotten = rng.random(len(need_order)) < p_forget

    f_order, f_item, f_cat = need_order[forgotten], acc_item[forgotten], acc_cat[forgotten]
    p_return = np.where(
        guest[f_order], RETURN_PROBABILITY["guest"], RETURN_PROBABILITY["registered"]
    )
    returned = rng.random(len(f_order)) < p_return
    parents = np.unique(f_order[returned])
    follow_idx = np.full(n_orders, -1, dtype=np.int64)
    follow_idx[parents] = n_orders + np.arange(len(parents))
    f_return = np.where(returned, follow_idx[f_order], -1)
    delay = np.minimum(3600 + rng.exponential(3.5 * DAY, len(parents)), RETURN_WITHIN_DAYS * DAY)

    follow_guest = guest[parents]
    follow_shopper = shopper[parents].copy()
    # A guest who comes back is a new anonymous shopper: nothing links the two orders.
    follow_shopper[follow_guest] = n_shoppers + np.arange(int(follow_guest.sum()))
    primary = np.concatenate([primary, primary[shopper[parents]][follow_guest]])
    secondary = np.concatenate([secondary, secondary[shopper[parents]][follow_guest]])

    ret_order = f_return[returned]
    ret_item = f_item[returned]
    main_qty = _quantities(main_item, samplers, rng)
    acc_order, acc_bought = need_order[~forgotten], acc_item[~forgotten]
    acc_qty = _quantities(acc_bought, samplers, rng)
    ret_qty = _quantities(ret_item, samplers, rng)

    return OrderDraw(
        shopper=np.concatenate([shopper, follow_shopper]),
        guest=np.concatenate([guest, follow_guest]),
        project=np.concatenate([project, project[parents]]),
        style=np.concatenate([style, style[parents]]),
        t=np.concatenate([t, t[parents] + delay]),
        follow_up_of=np.concatenate([np.full(n_orders, -1), parents]),
        primary=primary,
        secondary=secondary,
        n_users=n_users,
        line_order=np.concatenate([main_order, acc_order, ret_order]),
        line_item=np.concatenate([main_item, acc_bought, ret_item]),
        line_qty=np.concatenate([main_qty, acc_qty, ret_qty]),
        line_role=np.concatenate(
            [
                np.full(len(main_order), ROLE_MAIN),
                np.full(len(acc_order), ROLE_ACCESSORY),
                np.full(len(ret_order), ROLE_RETURN),
            ]
        ).astype(np.int8),
        forgot_order=f_order,
        forgot_item=f_item,
        forgot_category=f_cat,
        forgot_return_order=f_return,
        n_needed=len(need_order),
    )
