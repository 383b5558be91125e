"""Temporal splits and basket completions: the evaluation protocol every stage shares.

Orders are cut by time into consecutive windows holding given shares of the orders (the cut
points are timestamps, so every order of a window is later than every order of the previous
one). Within a later window, part of each order's distinct items is hidden and must be
recovered from the rest (leave-some-items-out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from recsys.data.orders import OrderTable


def window_cuts(ts: np.ndarray, shares: Sequence[float], cutoff: int | None = None) -> list[int]:
    """Timestamps cutting sorted order times ``ts`` into ``len(shares)`` windows holding those
    shares of the orders. With ``cutoff`` the last window starts exactly there and the earlier
    windows split the orders before it in proportion to their shares."""
    share = np.asarray(shares, dtype=np.float64)
    if cutoff is not None:
        before = ts[ts < cutoff]
        head = share[:-1] / share[:-1].sum()
        bounds = np.cumsum(head)[:-1]
        cuts = (
            [int(before[min(int(b * len(before)), len(before) - 1)]) for b in bounds]
            if len(before)
            else []
        )
        return [*cuts, int(cutoff)]
    bounds = np.cumsum(share)[:-1]
    return [int(ts[min(int(b * len(ts)), len(ts) - 1)]) for b in bounds]


def window_masks(ts: np.ndarray, cuts: Sequence[int]) -> list[np.ndarray]:
    """Boolean masks of the windows ``[-inf, c0), [c0, c1), ..., [c_last, inf)``."""
    edges = [np.iinfo(np.int64).min, *cuts, np.iinfo(np.int64).max]
    return [(ts >= lo) & (ts < hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]


@dataclass(frozen=True)
class Completion:
    """One basket-completion example: the visible part of an order and its hidden items."""

    order: int  # index in the OrderTable it came from
    visible: np.ndarray  # (m,) rows
    visible_qty: np.ndarray  # (m,)
    hidden: np.ndarray  # (h,) rows


def hide_items(
    orders: OrderTable, fraction: float, rng: np.random.Generator, max_orders: int | None = None
) -> list[Completion]:
    """For each order with at least two distinct items, hide ``max(1, round(fraction * m))``
    of its ``m`` distinct items (at most ``m - 1``), chosen at random. ``max_orders`` keeps a
    random sample of the eligible orders (in time order)."""
    sizes = np.diff(orders.matrix.indptr)
    eligible = np.nonzero(sizes >= 2)[0]
    if max_orders is not None and len(eligible) > max_orders:
        eligible = np.sort(rng.choice(eligible, size=max_orders, replace=False))
    out = []
    for i in eligible:
        items, qty = orders.items_of(int(i))
        m = len(items)
        h = min(max(1, int(round(fraction * m))), m - 1)
        perm = rng.permutation(m)
        hid, vis = perm[:h], np.sort(perm[h:])
        out.append(Completion(int(i), items[vis], qty[vis], np.sort(items[hid])))
    return out


def hide_for_ranker(
    orders: OrderTable, fraction: float, rng: np.random.Generator, max_orders: int, draws: int
) -> list[Completion]:
    """Ranker training baskets: ``hide_items`` repeated up to ``draws`` times on the same orders
    (each draw hides another random subset) while the total stays within ``max_orders``, so a
    small ranker window yields more baskets and a large one keeps a single draw."""
    out = hide_items(orders, fraction, rng, max_orders)
    per_draw = len(out)
    for _ in range(1, draws):
        if len(out) + per_draw > max_orders:
            break
        out += hide_items(orders, fraction, rng, max_orders)
    return out
