"""One accessory section per answer (``recsys.rules.slots``): properties over any basket and
rule set, and the known answer for overlapping rules."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.recommendation import NO_STYLE, FiredRule
from recsys.rules.engine import RuleEngine
from recsys.rules.slots import fill_accessory_slots
from tests.rules.test_engine import CATALOG, CLASSIC, LOFT, SKUS, _unique_ids, rule, rules_strategy

CODES = CATALOG.category_codes


def _check(slots, fired, item_rows, taken, cap, codes) -> None:
    by_id = {f.rule_id: f for f in fired}
    assert len(slots) <= cap
    rows = [s.row for s in slots]
    assert len(set(rows)) == len(rows), "an item is shown once"
    cats = [int(codes[r]) for r in rows if codes[r] >= 0]
    assert len(set(cats)) == len(cats), "one entry per category"
    item_cats = {int(codes[r]) for r in item_rows if codes[r] >= 0}
    assert not set(rows) & set(item_rows), "no SKU in both items and accessories"
    assert not set(cats) & item_cats, "no category in both items and accessories"
    assert not set(rows) & set(taken), "basket and excluded items are never suggested"
    for s in slots:
        assert s.row in by_id[s.rule_id].candidate_rows, "placed by a rule that suggested it"
        assert s.rule_ids[0] == s.rule_id and set(s.rule_ids) <= set(by_id)
        placed_by = by_id[s.rule_id]
        assert all(by_id[r].priority <= placed_by.priority for r in s.rule_ids), (
            "highest priority places"
        )
        assert set(s.reasons) <= {by_id[r].reason for r in s.rule_ids}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rules_strategy(), max_size=8).map(_unique_ids),
    basket=st.lists(
        st.tuples(st.sampled_from(SKUS), st.integers(1, 5)),
        min_size=1,
        max_size=4,
        unique_by=lambda t: t[0],
    ),
    items=st.lists(st.sampled_from(range(len(SKUS))), max_size=6, unique=True),
    style=st.sampled_from([NO_STYLE, LOFT, CLASSIC]),
    cap=st.integers(0, 8),
    seed=st.integers(0, 10_000),
)
def test_any_basket_any_rules_one_section(rules, basket, items, style, cap, seed) -> None:
    """Through the real engine: accessories unique by category, disjoint from items, within cap."""
    engine = RuleEngine.compile(rules, CATALOG)
    rows = [CATALOG.ids.row(s) for s, _ in basket]
    fired = engine.match(rows, [q for _, q in basket], style, "checkout")
    items = [r for r in items if r not in rows]
    noise = np.random.default_rng(seed).random(len(SKUS))
    slots = fill_accessory_slots(
        fired, CODES, cap=cap, item_rows=items, taken_rows=rows, score=lambda cand: noise[cand]
    )
    _check(slots, fired, items, rows, cap, CODES)


@st.composite
def fired_rules(draw, n_items: int):
    out = []
    for i in range(draw(st.integers(0, 6))):
        cand = draw(st.lists(st.integers(-2, n_items + 2), max_size=12))
        out.append(
            FiredRule(
                f"r{i}",
                draw(st.sampled_from(["", "a", "b", "often forgotten"])),
                tuple(cand),
                draw(st.integers(0, 4)),
                draw(st.integers(-2, 2)),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(data=st.data(), n_items=st.integers(1, 25), n_cats=st.integers(1, 6), cap=st.integers(0, 8))
def test_any_fired_rules_any_catalog(data, n_items, n_cats, cap) -> None:
    """The pure function alone, with out-of-range rows, uncategorised items and empty reasons."""
    codes = np.asarray(
        data.draw(st.lists(st.integers(-1, n_cats - 1), min_size=n_items, max_size=n_items))
    )
    fired = data.draw(fired_rules(n_items))
    items = data.draw(st.lists(st.integers(0, n_items - 1), max_size=5, unique=True))
    taken = data.draw(st.lists(st.integers(0, n_items - 1), max_size=3, unique=True))
    allowed = np.asarray(data.draw(st.lists(st.booleans(), min_size=n_items, max_size=n_items)))
    slots = fill_accessory_slots(
        fired, codes, cap=cap, item_rows=items, taken_rows=taken, allowed=allowed
    )
    _check(slots, fired, items, taken, cap, codes)
    assert all(allowed[s.row] for s in slots)


def test_overlapping_rules_give_one_entry_with_every_reason() -> None:
    """Three laminate rules all suggest underlay: one underlay line, three reasons (the issue's
    'underlay five times')."""
    rules = [
        rule(
            "lam-a",
            priority=5,
            reason="needed under laminate",
            trigger={"categories": ["laminate"]},
            suggest={"categories": ["underlay", "skirting-boards"], "max_items": 2},
        ),
        rule(
            "lam-b",
            priority=3,
            reason="finish the floor",
            trigger={"categories": ["laminate"]},
            suggest={"categories": ["underlay"]},
        ),
        rule(
            "paint",
            priority=4,
            reason="often forgotten with wall paint",
            suggest={
                "categories": ["protective-gloves", "masking-tape", "underlay"],
                "max_items": 3,
            },
        ),
    ]
    engine = RuleEngine.compile(rules, CATALOG)
    fired = engine.match_skus([("L1", 1), ("P1", 1)], NO_STYLE)
    slots = fill_accessory_slots(fired, CODES, cap=4, score=lambda c: -CATALOG.prices[c])
    shown = {CATALOG.categories[CODES[s.row]]: s for s in slots}
    assert set(shown) == {"underlay", "skirting-boards", "protective-gloves", "masking-tape"}
    assert shown["underlay"].rule_id == "lam-a" and shown["underlay"].rule_ids == [
        "lam-a",
        "paint",
        "lam-b",
    ]
    assert (
        shown["underlay"].reason
        == "needed under laminate; often forgotten with wall paint; finish the floor"
    )
    assert SKUS[shown["protective-gloves"].row] == "G1"  # the cheapest in stock pair
    # a cap of two keeps the two highest-priority entries
    assert [SKUS[s.row] for s in fill_accessory_slots(fired, CODES, cap=2)] == ["U1", "S1"]
    # a category the items already show is not repeated as an accessory
    again = fill_accessory_slots(
        fired, CODES, cap=4, item_rows=[CATALOG.ids.row("GR1"), CATALOG.ids.row("G2")]
    )
    assert "protective-gloves" not in {CATALOG.categories[CODES[s.row]] for s in again}
