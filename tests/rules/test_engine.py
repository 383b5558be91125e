"""Engine semantics on the tiny renovation catalog, and properties over random rules/baskets."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.recommendation import NO_STYLE, StyleReading
from recsys.rules.engine import RuleEngine
from recsys.rules.model import Rule, parse_rule
from tests.rules.conftest import make_catalog

CATALOG = make_catalog()
LOFT = StyleReading(top="loft", confidence=0.9, distribution={"loft": 0.9})
CLASSIC = StyleReading(top="classic", confidence=0.9, distribution={"classic": 0.9})


def rule(rid: str = "r", **parts) -> Rule:
    doc = {
        "id": rid,
        "name": rid,
        "trigger": {"categories": ["wall-paint"]},
        "suggest": {"categories": ["protective-gloves"]},
    }
    doc.update(parts)
    return parse_rule(doc)


def fire(
    rules: list[Rule],
    skus: list[str],
    qty: list[int] | None = None,
    style=NO_STYLE,
    page: str = "checkout",
    now: datetime | None = None,
    **kw,
):
    engine = RuleEngine.compile(rules, CATALOG, **kw)
    rows = [CATALOG.ids.row(s) for s in skus]
    return engine.match(rows, qty or [1] * len(rows), style, page, now)


def skus(fired) -> list[str]:
    return CATALOG.ids.external(list(fired.candidate_rows))


def test_a_rule_fires_with_constrained_candidates() -> None:
    (f,) = fire([rule()], ["P1"])
    assert f.rule_id == "r" and f.reason == "often forgotten with wall paint"
    assert skus(f) == ["G1", "G2"]  # G3 is out of stock


def test_price_cap_and_out_of_stock_allowed_when_asked() -> None:
    (f,) = fire(
        [
            rule(
                suggest={
                    "categories": ["protective-gloves"],
                    "constraints": {"max_price": 10, "in_stock": False},
                }
            )
        ],
        ["P1"],
    )
    assert skus(f) == ["G1", "G3"]


def test_no_trigger_no_fire_and_empty_basket() -> None:
    assert fire([rule()], ["T1"]) == []
    assert fire([rule()], []) == []


def test_unless_blocks_the_rule() -> None:
    r = rule(unless=["masking-tape"])
    assert fire([r], ["P1", "M1"]) == []
    assert len(fire([r], ["P1"])) == 1


def test_suggested_category_already_in_basket_is_skipped_unless_disabled() -> None:
    r = rule(suggest={"categories": ["protective-gloves", "masking-tape"]})
    (f,) = fire([r], ["P1", "G2"])
    assert skus(f) == ["M1"]
    keep = rule(
        suggest={"categories": ["protective-gloves"], "constraints": {"skip_if_in_basket": False}}
    )
    (f,) = fire([keep], ["P1", "G2"])
    assert skus(f) == ["G1"]  # the basket item itself is never suggested


def test_quantity_threshold() -> None:
    r = rule(trigger={"categories": ["wall-paint"], "min_quantity": 3})
    assert fire([r], ["P1"], [2]) == []
    assert len(fire([r], ["P1", "P2"], [2, 1])) == 1  # quantities of triggering lines add up
    assert fire([r], ["P1", "T1"], [2, 5]) == []  # tile does not count


def test_placement_and_page() -> None:
    r = rule(placements=["cart"])
    assert fire([r], ["P1"], page="checkout") == []
    assert len(fire([r], ["P1"], page="cart")) == 1
    with pytest.raises(ValueError, match="unknown page"):
        fire([r], ["P1"], page="home")


def test_validity_window() -> None:
    r = rule(valid_from="2025-01-01T00:00:00Z", valid_to="2025-02-01T00:00:00Z")
    assert fire([r], ["P1"], now=datetime(2024, 12, 31, tzinfo=UTC)) == []
    assert len(fire([r], ["P1"], now=datetime(2025, 1, 15, tzinfo=UTC))) == 1
    assert fire([r], ["P1"], now=datetime(2025, 2, 1, tzinfo=UTC)) == []


def test_disabled_rules_are_not_compiled() -> None:
    assert fire([rule(enabled=False)], ["P1"]) == []


def test_priority_order_then_given_order_and_max_fired() -> None:
    rules = [
        rule("low", priority=1),
        rule("high", priority=9),
        rule("mid", priority=5),
        rule("mid2", priority=5),
    ]
    assert [f.rule_id for f in fire(rules, ["P1"])] == ["high", "mid", "mid2", "low"]
    assert [f.rule_id for f in fire(rules, ["P1"], max_fired=2)] == ["high", "mid"]


def test_match_all_needs_every_listed_item() -> None:
    r = rule(trigger={"match": "all", "categories": ["wall-paint", "tile"]})
    assert fire([r], ["P1"]) == []
    assert len(fire([r], ["P1", "T2"])) == 1


def test_sku_and_attribute_triggers() -> None:
    by_sku = rule(trigger={"skus": ["T2"]}, suggest={"categories": ["grout"]})
    assert fire([by_sku], ["T1"]) == [] and len(fire([by_sku], ["T2"])) == 1
    metal = rule(
        trigger={"attributes": [{"key": "material", "value": "Metal"}]},
        suggest={"skus": ["S1", "U1"]},
    )
    (f,) = fire([metal], ["C1"])
    assert sorted(skus(f)) == ["S1", "U1"]
    assert fire([metal], ["C2"]) == []


def test_style_trigger_and_match_style_constraint() -> None:
    r = rule(
        trigger={"categories": ["tile"]},
        suggest={"categories": ["grout"], "constraints": {"match_style": True}},
    )
    (f,) = fire([r], ["T1"], style=LOFT)
    assert skus(f) == ["GR1", "GR3"]  # loft grout + the style-neutral one, not the classic one
    (f,) = fire([r], ["T1"], style=CLASSIC)
    assert skus(f) == ["GR2", "GR3"]
    (f,) = fire([r], ["T1"], style=NO_STYLE)  # no clear style: nothing to match
    assert skus(f) == ["GR1", "GR2", "GR3"]
    only_loft = rule(
        trigger={"categories": ["tile"], "styles": ["loft"]}, suggest={"categories": ["grout"]}
    )
    assert fire([only_loft], ["T1"], style=CLASSIC) == []
    assert len(fire([only_loft], ["T1"], style=LOFT)) == 1


def test_inferred_item_styles_are_used_when_given() -> None:
    styles = CATALOG.style_labels()
    loft = CATALOG.taxonomy.index("loft")
    styles[CATALOG.ids.row("GR3"), loft] = 0.0
    styles[CATALOG.ids.row("GR3"), CATALOG.taxonomy.index("classic")] = 1.0  # inferred: classic
    r = rule(
        trigger={"categories": ["tile"]},
        suggest={"categories": ["grout"], "constraints": {"match_style": True}},
    )
    (f,) = fire([r], ["T1"], style=LOFT, item_styles=styles)
    assert skus(f) == ["GR1"]
    with pytest.raises(ValueError, match="item_styles must have shape"):
        RuleEngine.compile([r], CATALOG, styles[:, :2])


def test_unknown_names_are_reported_not_fatal() -> None:
    engine = RuleEngine.compile(
        [
            rule(
                "a",
                trigger={"categories": ["nope", "wall-paint"]},
                suggest={"categories": ["nope2", "grout"]},
            ),
            rule("b", trigger={"categories": ["nope"]}),
        ],
        CATALOG,
    )
    assert [r.id for r in engine.rules] == ["a"]
    assert "unknown trigger categories: nope" in engine.problems_["a"]
    assert "trigger matches nothing in this catalog" in engine.problems_["b"]


def test_bad_basket_input_is_a_clear_error() -> None:
    engine = RuleEngine.compile([rule()], CATALOG)
    with pytest.raises(ValueError, match="differ in length"):
        engine.match([0, 1], [1], NO_STYLE, "checkout")
    with pytest.raises(ValueError, match="out of range"):
        engine.match([999], [1], NO_STYLE, "checkout")


def test_match_skus_ignores_unknown() -> None:
    engine = RuleEngine.compile([rule()], CATALOG)
    assert [f.rule_id for f in engine.match_skus([("P1", 1), ("ZZZ", 2)], NO_STYLE)] == ["r"]


# -- properties -------------------------------------------------------------------------------
CATS = list(CATALOG.categories)
SKUS = CATALOG.ids.to_list()


def small_lists(pool, lo=0):  # noqa: ANN001, ANN201
    return st.lists(st.sampled_from(pool), min_size=lo, max_size=3, unique=True)


@st.composite
def rules_strategy(draw) -> Rule:
    trig_cats = draw(small_lists(CATS))
    trig_skus = draw(small_lists(SKUS, 0 if trig_cats else 1))
    sug_cats = draw(small_lists(CATS))
    sug_skus = draw(small_lists(SKUS, 0 if sug_cats else 1))
    return parse_rule(
        {
            "id": f"r{draw(st.integers(0, 10**6))}",
            "name": "n",
            "priority": draw(st.integers(-3, 3)),
            "placements": draw(
                st.lists(
                    st.sampled_from(["checkout", "cart", "product"]),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            ),
            "trigger": {
                "match": draw(st.sampled_from(["any", "all"])),
                "categories": trig_cats,
                "skus": trig_skus,
                "min_quantity": draw(st.integers(1, 4)),
            },
            "suggest": {
                "categories": sug_cats,
                "skus": sug_skus,
                "max_items": draw(st.integers(1, 3)),
                "constraints": {
                    "in_stock": draw(st.booleans()),
                    "match_style": draw(st.booleans()),
                    "max_price": draw(st.one_of(st.none(), st.floats(1, 200))),
                    "skip_if_in_basket": draw(st.booleans()),
                },
            },
            "unless": draw(small_lists(CATS)),
            "enabled": draw(st.booleans()),
        }
    )


def _unique_ids(rules: list[Rule]) -> list[Rule]:
    return list({r.id: r for r in rules}.values())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rules_strategy(), max_size=8).map(_unique_ids),
    basket=st.lists(
        st.tuples(st.sampled_from(SKUS), st.integers(1, 5)), max_size=4, unique_by=lambda t: t[0]
    ),
    style=st.sampled_from([NO_STYLE, LOFT, CLASSIC]),
    page=st.sampled_from(["checkout", "cart", "product"]),
)
def test_output_respects_every_constraint(rules, basket, style, page) -> None:
    engine = RuleEngine.compile(rules, CATALOG)
    rows = [CATALOG.ids.row(s) for s, _ in basket]
    fired = engine.match(rows, [q for _, q in basket], style, page)
    by_id = {r.id: r for r in rules}
    basket_cats = {CATALOG.categories[c] for c in CATALOG.category_codes[rows]} if rows else set()
    priorities = [f.priority for f in fired]
    assert priorities == sorted(priorities, reverse=True)
    assert len({f.rule_id for f in fired}) == len(fired)
    for f in fired:
        r = by_id[f.rule_id]
        assert r.enabled and page in r.placements
        assert not (set(r.unless) & basket_cats), "unless honoured"
        assert f.candidate_rows, "a fired rule has something to show"
        for row in f.candidate_rows:
            sku, cat = SKUS[row], CATALOG.categories[CATALOG.category_codes[row]]
            assert row not in rows, "basket items are never suggested"
            assert sku in r.suggest.skus or cat in r.suggest.categories, (
                "output within the suggestion"
            )
            c = r.suggest.constraints
            if c.in_stock:
                assert CATALOG.in_stock[row]
            if c.max_price is not None:
                assert CATALOG.prices[row] <= c.max_price
            if c.skip_if_in_basket and cat in r.suggest.categories and sku not in r.suggest.skus:
                assert cat not in basket_cats
        trig_rows = [
            row
            for row in rows
            if SKUS[row] in r.trigger.skus
            or CATALOG.categories[CATALOG.category_codes[row]] in r.trigger.categories
        ]
        assert trig_rows, "something in the basket triggered it"
        assert (
            sum(q for (s, q) in basket if CATALOG.ids.row(s) in trig_rows) >= r.trigger.min_quantity
        )
        if r.trigger.match == "all":
            assert set(r.trigger.categories) <= basket_cats
            assert set(r.trigger.skus) <= {s for s, _ in basket}


@settings(max_examples=60, deadline=None)
@given(rules=st.lists(rules_strategy(), max_size=6).map(_unique_ids), seed=st.integers(0, 1000))
def test_batch_equals_brute_force_firing_set(rules, seed) -> None:
    """The indexes never lose a rule: compare with a brute-force check of every rule."""
    rng = np.random.default_rng(seed)
    rows = sorted(rng.choice(len(SKUS), size=int(rng.integers(1, 4)), replace=False).tolist())
    qty = [1] * len(rows)
    fired = {
        f.rule_id
        for f in RuleEngine.compile(rules, CATALOG, max_fired=100).match(
            rows, qty, NO_STYLE, "checkout"
        )
    }
    for r in rules:
        alone = RuleEngine.compile([r], CATALOG).match(rows, qty, NO_STYLE, "checkout")
        assert (r.id in fired) == bool(alone)
