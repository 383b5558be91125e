"""Replay a draft rule over real baskets before publishing it: on what share of baskets it
fires, what it would show most often (through the same one-section slot filler the answer
uses, so overlaps with other rules are counted as they would play out), and which other rules
it overlaps with (they fire on the same basket and suggest the same category).

Pure: baskets are (rows, quantities) pairs; the caller reads them from the event store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from recsys.recommendation import NO_STYLE
from recsys.rules.engine import RuleEngine
from recsys.rules.slots import fill_accessory_slots

Basket = tuple[Sequence[int], Sequence[int]]


@dataclass
class RuleReplay:
    """What a rule would have done on ``baskets`` baskets."""

    baskets: int = 0
    fired: int = 0  # baskets on which the rule fired
    shown: Counter[int] = field(default_factory=Counter)  # item row -> baskets it was shown in
    overlaps: Counter[str] = field(
        default_factory=Counter
    )  # other rule -> baskets sharing a slot category
    overlap_categories: dict[str, set[int]] = field(
        default_factory=dict
    )  # other rule -> category codes

    @property
    def fired_share(self) -> float:
        return self.fired / self.baskets if self.baskets else 0.0


def replay_rule(
    engine: RuleEngine,
    rule_id: str,
    baskets: Sequence[Basket],
    *,
    page: str = "checkout",
    cap: int = 4,
    now: datetime | None = None,
) -> RuleReplay:
    """Run ``engine`` (the stored rules with the draft ``rule_id`` in place) on every basket.

    Slots are filled cheapest first (the preview's order when no recommender ranks them);
    the basket's style is unknown here, so rules that require a style do not fire."""
    codes = engine.catalog_.category_codes
    prices = engine.catalog_.prices
    out = RuleReplay(baskets=len(baskets))
    for rows, qty in baskets:
        if not len(rows):
            continue
        fired = engine.match(list(rows), list(qty), NO_STYLE, page, now)
        if not any(f.rule_id == rule_id for f in fired):
            continue
        out.fired += 1
        slots = fill_accessory_slots(
            fired, codes, cap=cap, taken_rows=rows, score=lambda c: -prices[c]
        )
        for slot in slots:
            if rule_id not in slot.rule_ids:
                continue
            if slot.rule_id == rule_id:
                out.shown[slot.row] += 1
            for other in slot.rule_ids:
                if other != rule_id:
                    out.overlaps[other] += 1
                    out.overlap_categories.setdefault(other, set()).add(int(codes[slot.row]))
    return out


def baskets_from_orders(
    order_ids: np.ndarray, rows: np.ndarray, quantities: np.ndarray
) -> list[Basket]:
    """Group purchase lines (order id, catalog row, quantity) into baskets, unknown rows dropped."""
    keep = rows >= 0
    order_ids, rows, quantities = order_ids[keep], rows[keep], quantities[keep]
    baskets: dict[object, tuple[list[int], list[int]]] = {}
    for o, r, q in zip(order_ids.tolist(), rows.tolist(), quantities.tolist(), strict=True):
        b = baskets.setdefault(o, ([], []))
        if r in b[0]:
            b[1][b[0].index(r)] += int(q)
        else:
            b[0].append(int(r))
            b[1].append(int(q))
    return list(baskets.values())
