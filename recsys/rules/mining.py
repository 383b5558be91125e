"""Mining rule suggestions from order history: which accessory categories shoppers come back
for after buying an anchor category (the "forgotten" signal), and which co-occur far above chance.

Everything is at category level because rules are: anchor category -> accessory category.
Training writes the suggestions into the model bundle (``mined_rules.json``) so serving, which
has no order history, can show them to merchandisers with their evidence.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsys.data.catalog import Catalog
from recsys.data.interactions import Interactions
from recsys.rules.model import Rule, parse_rule

log = logging.getLogger(__name__)
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Suggestion:
    """A proposed rule ``anchor -> accessory`` with its evidence.

    ``anchor_orders``: orders (of known users) holding the anchor; ``together``: of those, holding
    the accessory too; ``later``: of the anchor orders *without* the accessory, followed by an
    order of the same user holding it within ``window_days`` (the forgotten signal);
    ``forgotten_rate`` = later / (anchor_orders - together); ``completion_rate`` =
    (together + later) / anchor_orders; ``lift`` = P(accessory | anchor) / P(accessory) within
    an order (all orders); ``later_lift`` = forgotten_rate / the rate at which any order
    without the accessory is followed by it (so accessories everyone buys anyway do not count).
    """

    id: str
    anchor: str
    accessory: str
    anchor_orders: int
    together: int
    later: int
    lift: float
    forgotten_rate: float
    completion_rate: float
    window_days: int
    sentence: str
    later_lift: float = 0.0
    signal: str = "forgotten"  # "forgotten" (came back for it) or "bought together" (lift only)

    def to_rule(self) -> Rule:
        """The rule a merchandiser gets by accepting this suggestion (one checkout slot)."""
        return parse_rule(
            {
                "id": self.id,
                "name": f"{_human(self.anchor)} => {_human(self.accessory)} (mined)",
                "description": self.sentence,
                "reason": f"often forgotten with {_human(self.anchor)}",
                "placements": ["checkout", "cart"],
                "trigger": {"categories": [self.anchor]},
                "suggest": {"categories": [self.accessory], "max_items": 1},
                "tags": ["mined"],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _human(slug: str) -> str:
    return slug.replace("-", " ")


def _window_words(days: int) -> str:
    if days % 7 == 0 and days // 7 <= 8:
        weeks = days // 7
        return {1: "a week", 2: "two weeks", 3: "three weeks", 4: "four weeks"}.get(
            weeks, f"{weeks} weeks"
        )
    return f"{days} days"


def mine_suggestions(
    catalog: Catalog,
    interactions: Interactions,
    *,
    window_days: int = 14,
    min_anchor_orders: int = 20,
    min_later: int = 5,
    min_forgotten_rate: float = 0.2,
    min_later_lift: float = 2.0,
    min_lift: float = 2.0,
    min_completion: float = 0.3,
    max_per_anchor: int = 5,
    co_purchase: bool = True,
) -> list[Suggestion]:
    """Propose ``anchor -> accessory`` category rules from purchases, strongest first.

    A pair is kept when the anchor has at least ``min_anchor_orders`` orders, at least
    ``min_completion`` of them got the accessory (same order or later), and either the forgotten
    signal holds (``later >= min_later``, ``forgotten_rate >= min_forgotten_rate`` and
    ``later_lift >= min_later_lift``) or the co-occurrence lift is at least ``min_lift`` (with
    ``together >= min_later``). Thresholds keep room- and project-level co-purchases (a lamp with
    a sconce, a mirror with grout in a bathroom job) out: those are neither completed nor
    forgotten. The
    direction is the one shoppers come back in (more ``later`` from anchor to accessory than
    back; ties go to the cheaper category as the accessory). ``co_purchase=False`` keeps only
    the forgotten signal (lift-only pairs are often companions of the same project, not
    accessories). Forgotten pairs come first, then by completion rate.
    """
    if window_days <= 0:
        raise ValueError("window_days must be > 0")
    if not catalog.has_categories:
        return []
    buys = interactions.purchases()
    rows = np.fromiter((catalog.ids.get(s) for s in buys["sku"]), np.int64, len(buys))
    keep = rows >= 0
    codes = np.full(len(rows), -1, dtype=np.int64)
    codes[keep] = catalog.category_codes[rows[keep]]
    keep &= codes >= 0
    if not keep.any():
        return []
    frame = pd.DataFrame(
        {
            "order_id": buys["order_id"].to_numpy()[keep],
            "user_id": buys["user_id"].to_numpy()[keep],
            "ts": buys["ts"].to_numpy()[keep],
            "code": codes[keep],
        }
    )
    orders = frame.groupby("order_id", sort=False).agg(
        user_id=("user_id", "first"), ts=("ts", "min")
    )
    orders["has_user"] = orders["user_id"].notna()
    orders = orders.sort_values(["has_user", "user_id", "ts"], kind="stable", na_position="first")
    order_pos = pd.Series(np.arange(len(orders)), index=orders.index)
    n_orders, n_cats = len(orders), len(catalog.categories)
    # X: (n_orders, n_cats) 0/1 incidence, orders sorted by user then time
    x = sparse.csr_matrix(
        (
            np.ones(len(frame), dtype=np.float32),
            (order_pos[frame["order_id"]].to_numpy(), frame["code"]),
        ),
        shape=(n_orders, n_cats),
    )
    x.data[:] = 1.0
    x.sum_duplicates()
    x.data[:] = 1.0
    per_cat = np.asarray(x.sum(axis=0)).ravel()
    co = (x.T @ x).toarray()
    lift = co * n_orders / np.maximum(np.outer(per_cat, per_cat), 1.0)

    # W: (n_orders, n_orders), W[i, j] = 1 when j is a later order of i's user within the window
    users = orders["user_id"].to_numpy()
    ts = pd.to_datetime(orders["ts"], utc=True).dt.tz_localize(None).to_numpy("datetime64[ns]")
    ts = ts.astype(np.int64)
    has_user = orders["has_user"].to_numpy()
    window_ns = int(window_days) * 86_400 * 10**9
    user_codes = pd.factorize(pd.Series(users).where(has_user, None))[0]
    key_start = np.arange(n_orders) + 1
    # last order j of the same user with ts_j <= ts_i + window: search in (user, ts) order
    composite = user_codes.astype(np.float64) * 1e20 + ts.astype(np.float64)  # sorted already
    ends = np.searchsorted(
        composite, user_codes.astype(np.float64) * 1e20 + (ts + window_ns), "right"
    )
    ends = np.where(has_user, ends, key_start)
    lengths = np.maximum(ends - key_start, 0)
    src = np.repeat(np.arange(n_orders), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    dst = np.repeat(key_start, lengths) + offsets
    w = sparse.csr_matrix((np.ones(len(src), np.float32), (src, dst)), shape=(n_orders, n_orders))
    later_any = (w @ x).tocsr()
    later_any.data[:] = 1.0
    later_not_in_order = later_any - later_any.multiply(x)  # bought later, not in the anchor order
    xu = x[np.flatnonzero(has_user)]
    later = (x.T @ later_not_in_order).toarray()  # (n_cats, n_cats): anchor a -> later b
    anchor_orders = np.asarray(xu.sum(axis=0)).ravel()
    together_u = (xu.T @ xu).toarray()
    without = np.maximum(anchor_orders[:, None] - together_u, 1.0)
    forgotten_rate = later / without
    # baseline: how often ANY order without b (of a known user) is followed by b in the window
    not_b = (
        np.maximum(len(xu.getnnz(axis=1)) - anchor_orders, 1.0) if xu.shape[0] else np.ones(n_cats)
    )
    later_base = (
        np.asarray(later_not_in_order[np.flatnonzero(has_user)].sum(axis=0)).ravel() / not_b
    )
    later_lift = forgotten_rate / np.maximum(later_base[None, :], 1e-9)
    completion = (together_u + later) / np.maximum(anchor_orders[:, None], 1.0)

    mean_price = pd.Series(catalog.prices).groupby(catalog.category_codes).mean()
    price = np.array([mean_price.get(c, 0.0) for c in range(n_cats)])
    out: list[Suggestion] = []
    words = _window_words(window_days)
    for a in range(n_cats):
        if anchor_orders[a] < min_anchor_orders:
            continue
        picks = []
        for b in range(n_cats):
            if a == b:
                continue
            forgotten = (
                later[a, b] >= min_later
                and forgotten_rate[a, b] >= min_forgotten_rate
                and later_lift[a, b] >= min_later_lift
            )
            lifted = lift[a, b] >= min_lift and together_u[a, b] >= min_later
            if completion[a, b] < min_completion or not (forgotten or lifted):
                continue
            if not forgotten and not co_purchase:
                continue
            if later[a, b] < later[b, a] or (later[a, b] == later[b, a] and price[b] > price[a]):
                continue
            picks.append(b)
        picks.sort(key=lambda b: (-completion[a, b], -lift[a, b]))
        picks_forgotten = {
            b
            for b in picks
            if later[a, b] >= min_later
            and forgotten_rate[a, b] >= min_forgotten_rate
            and later_lift[a, b] >= min_later_lift
        }
        picks.sort(key=lambda b: (b not in picks_forgotten, -completion[a, b], -lift[a, b]))
        for b in picks[:max_per_anchor]:
            an, ac = catalog.categories[a], catalog.categories[b]
            sentence = (
                f"{completion[a, b]:.0%} of shoppers who bought {_human(an)} bought {_human(ac)} "
                f"in the same order or within {words}"
            )
            if later[a, b] > 0:
                sentence += (
                    f"; {forgotten_rate[a, b]:.0%} of those who left it out came back for it"
                )
            if lift[a, b] >= 1.0:
                sentence += f"; bought together {lift[a, b]:.1f}x more often than chance"
            sentence += f" ({int(anchor_orders[a])} orders)"
            out.append(
                Suggestion(
                    id=f"mined-{an}-{ac}"[:80],
                    anchor=an,
                    accessory=ac,
                    anchor_orders=int(anchor_orders[a]),
                    together=int(together_u[a, b]),
                    later=int(later[a, b]),
                    lift=round(float(lift[a, b]), 3),
                    forgotten_rate=round(float(forgotten_rate[a, b]), 4),
                    completion_rate=round(float(completion[a, b]), 4),
                    window_days=int(window_days),
                    sentence=sentence,
                    later_lift=round(float(later_lift[a, b]), 3),
                    signal="forgotten" if b in picks_forgotten else "bought together",
                )
            )
    out.sort(key=lambda s: (s.signal != "forgotten", -s.completion_rate, -s.later, s.id))
    log.info("mined %d rule suggestions from %d orders", len(out), n_orders)
    return out


def save_suggestions(suggestions: list[Suggestion], path: str | Path) -> None:
    """Write suggestions as JSON (``mined_rules.json`` in the bundle)."""
    payload = {"schema_version": SCHEMA_VERSION, "suggestions": [s.to_dict() for s in suggestions]}
    Path(path).write_text(json.dumps(payload, indent=1, sort_keys=True))


def load_suggestions(path: str | Path) -> list[Suggestion]:
    """Read ``save_suggestions`` output; a missing file is no suggestions, a bad one an error."""
    path = Path(path)
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: unsupported mined rules file (schema_version {data.get('schema_version')!r}, "
            f"expected {SCHEMA_VERSION})"
        )
    return [Suggestion(**s) for s in data["suggestions"]]


def suggestion_rules(
    suggestions: list[Suggestion] | tuple[Suggestion, ...] | None,
    catalog: Catalog,
    item_styles: np.ndarray | None,
) -> Any:
    """The compiled ``RuleEngine`` of mined suggestions: a model's default checkout rules when
    no merchandiser rules are given (the same for a freshly fitted and a loaded model); None
    when there are none."""
    if not suggestions:
        return None
    from recsys.rules.engine import RuleEngine

    return RuleEngine.compile([s.to_rule() for s in suggestions], catalog, item_styles)
