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


def _check(slots, fired, item_rows, taken, cap, codes, firsts=None) -> None:
    """``firsts``: the section without second choices (``second_choices=False``)."""
    by_id = {f.rule_id: f for f in fired}
    assert len(slots) <= cap
    rows = [s.row for s in slots]
    assert len(set(rows)) == len(rows), "an item is shown once"
    keys = [int(codes[r]) if codes[r] >= 0 else -(r + 2) for r in rows]
    n_first = len(set(keys))
    assert len(set(keys[:n_first])) == n_first, "every category's first line before any second"
    seconds = keys[n_first:]
    assert len(set(seconds)) == len(seconds), "at most two lines per category"
    assert all(k >= 0 for k in seconds), "an uncategorised item has no second choice"
    first_of = {k: s for k, s in zip(keys[:n_first], slots[:n_first], strict=True)}
    for k, s in zip(seconds, slots[n_first:], strict=True):
        assert (s.rule_id, s.reasons) == (first_of[k].rule_id, first_of[k].reasons), (
            "a second choice comes from the rule that placed its category"
        )
    if firsts is not None:
        assert [(s.row, s.rule_id, s.reasons) for s in slots[:n_first]] == [
            (s.row, s.rule_id, s.reasons) for s in firsts
        ], "second choices never change the first choices"
        assert not seconds or len(firsts) < cap, "second choices only fill free lines"
    cats = [int(codes[r]) for r in rows if codes[r] >= 0]
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
    kw = {"cap": cap, "item_rows": items, "taken_rows": rows, "score": lambda c: noise[c]}
    firsts = fill_accessory_slots(fired, CODES, second_choices=False, **kw)
    _check(firsts, fired, items, rows, cap, CODES)
    assert len({int(CODES[s.row]) for s in firsts}) == len(firsts), "one line per category"
    _check(fill_accessory_slots(fired, CODES, **kw), fired, items, rows, cap, CODES, firsts)


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
    kw = {"cap": cap, "item_rows": items, "taken_rows": taken, "allowed": allowed}
    firsts = fill_accessory_slots(fired, codes, second_choices=False, **kw)
    slots = fill_accessory_slots(fired, codes, **kw)
    _check(slots, fired, items, taken, cap, codes, firsts)
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


def test_free_lines_offer_a_second_choice_of_the_categories_shown() -> None:
    """Paint fires gloves and tape, the section has four lines: the two first choices, then the
    second-best gloves (the only category with another usable candidate); never a third."""
    paint = rule(
        "paint",
        priority=5,
        reason="often forgotten with wall paint",
        suggest={"categories": ["protective-gloves", "masking-tape"], "max_items": 2},
    )
    fired = RuleEngine.compile([paint], CATALOG).match_skus([("P1", 1)], NO_STYLE)
    cheapest = lambda c: -CATALOG.prices[c]  # noqa: E731
    slots = fill_accessory_slots(fired, CODES, cap=4, score=cheapest)
    # M1 3.0, G1 4.0 first; then the next gloves in stock (the rule's default constraint: G3
    # is out of stock), G2; masking tape has no other SKU
    assert [SKUS[s.row] for s in slots] == ["M1", "G1", "G2"]
    assert [s.rule_id for s in slots] == ["paint"] * 3
    assert slots[2].reason == "often forgotten with wall paint"
    # a full section keeps one line per category; no second choice without a free line
    two = fill_accessory_slots(fired, CODES, cap=2, score=cheapest)
    assert [SKUS[s.row] for s in two] == ["M1", "G1"]
    off = fill_accessory_slots(fired, CODES, cap=4, score=cheapest, second_choices=False)
    assert [SKUS[s.row] for s in off] == ["M1", "G1"]
    # the second choice obeys the same filters as the first
    allowed = np.ones(len(SKUS), bool)
    allowed[CATALOG.ids.row("G2")] = False
    filtered = fill_accessory_slots(fired, CODES, cap=4, score=cheapest, allowed=allowed)
    assert [SKUS[s.row] for s in filtered] == ["M1", "G1"]


def test_random_sections_with_many_candidates_per_category() -> None:
    """Crowded categories (several usable candidates each) and free lines, where second
    choices happen; the properties above on 2,000 seeded draws."""
    rng = np.random.default_rng(0)
    seconds = 0
    for _ in range(2000):
        n_items, n_cats = int(rng.integers(1, 26)), int(rng.integers(1, 7))
        codes = rng.integers(-1, n_cats, n_items)
        fired = [
            FiredRule(
                f"r{i}",
                str(rng.choice(["", "a", "b"])),
                tuple(rng.integers(-2, n_items + 3, rng.integers(0, 13)).tolist()),
                int(rng.integers(0, 5)),
                int(rng.integers(-2, 3)),
            )
            for i in range(int(rng.integers(0, 7)))
        ]
        items = rng.choice(n_items, int(rng.integers(0, min(n_items, 4) + 1)), replace=False)
        kw = {"cap": int(rng.integers(0, 9)), "item_rows": items.tolist()}
        firsts = fill_accessory_slots(fired, codes, second_choices=False, **kw)
        slots = fill_accessory_slots(fired, codes, **kw)
        _check(slots, fired, items.tolist(), [], kw["cap"], codes, firsts)
        seconds += len(slots) - len(firsts)
    assert seconds > 100  # the draws do exercise second choices
