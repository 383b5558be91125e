"""Answer controls (``recsys.controls``): validation, and properties of ``apply_controls``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.controls import CompiledControls, apply_controls, control_summary, parse_control
from recsys.rules.model import RuleValidationError
from tests.rules.conftest import make_catalog

CATALOG = make_catalog()
SKUS = CATALOG.ids.to_list()
CATS = list(CATALOG.categories)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def control(cid: str = "c", **kw):
    doc = {"id": cid, "name": cid, "action": "hide", "target": {"categories": ["grout"]}}
    doc.update(kw)
    return parse_control(doc)


def test_validation_names_every_bad_field() -> None:
    with pytest.raises(RuleValidationError) as exc:
        parse_control({"id": "Bad Id", "name": "", "action": "pin", "target": {}})
    paths = {e.path for e in exc.value.errors}
    assert {"id", "name", "target"} <= paths
    with pytest.raises(RuleValidationError, match="needs a position"):
        parse_control({"id": "p", "name": "p", "action": "pin", "target": {"skus": ["G1"]}})
    with pytest.raises(RuleValidationError, match="multiplier must be above 1"):
        control(action="boost", multiplier=0.5)
    with pytest.raises(RuleValidationError, match="valid_to must be after"):
        control(valid_from="2026-06-02T00:00:00Z", valid_to="2026-06-01T00:00:00Z")
    assert (
        control_summary(control(action="bury", multiplier=0.3, target={"categories": ["laminate"]}))
        == "bury laminate x0.3"
    )


def test_known_answer_pin_hide_bury_boost() -> None:
    rows = np.asarray([CATALOG.ids.row(s) for s in ["GR1", "G1", "T1", "L1", "C1", "U1"]])
    scores = np.asarray([6.0, 5, 4, 3, 2, 1])  # ranked as listed
    compiled = CompiledControls(
        [
            control("hide-grout"),
            control("pin-u1", action="pin", position=1, target={"skus": ["U1"]}),
            control("bury-tile", action="bury", shift=2, target={"categories": ["tile"]}),
            control("boost-loft", action="boost", multiplier=10, target={"styles": ["loft"]}),
        ],
        CATALOG,
    )
    order, new_scores, applied = apply_controls(rows, scores, compiled, page="checkout", now=NOW)
    # loft boost x10 lifts T1 and C1 above G1; the tile bury moves T1 two places down; U1 pinned first
    assert [SKUS[rows[i]] for i in order] == ["U1", "C1", "T1", "G1", "L1"]
    assert {(SKUS[a.row], a.control_id) for a in applied} == {
        ("GR1", "hide-grout"),
        ("U1", "pin-u1"),
        ("T1", "bury-tile"),
        ("T1", "boost-loft"),
        ("C1", "boost-loft"),
    }
    assert new_scores[4] > scores[4] and new_scores[1] == scores[1]
    # placements and the validity window
    _, _, none = apply_controls(rows, scores, compiled, page="product", now=NOW)
    assert none  # default placements include product
    later = CompiledControls([control(valid_to="2026-05-01T00:00:00Z")], CATALOG)
    order, _, applied = apply_controls(rows, scores, later, page="checkout", now=NOW)
    assert applied == [] and len(order) == len(rows)
    cart_only = CompiledControls([control(placements=["cart"])], CATALOG)
    assert apply_controls(rows, scores, cart_only, page="checkout", now=NOW)[2] == []
    disabled = CompiledControls([control(enabled=False)], CATALOG)
    assert len(disabled) == 0


@st.composite
def controls_strategy(draw):
    action = draw(st.sampled_from(["pin", "boost", "bury", "hide"]))
    doc = {
        "id": f"c{draw(st.integers(0, 10**6))}",
        "name": "n",
        "action": action,
        "priority": draw(st.integers(-3, 3)),
        "placements": draw(
            st.lists(
                st.sampled_from(["checkout", "cart", "product"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        ),
    }
    if action == "pin":
        doc["target"] = {"skus": [draw(st.sampled_from(SKUS))]}
        doc["position"] = draw(st.integers(1, 12))
    else:
        doc["target"] = draw(
            st.sampled_from(
                [
                    {
                        "categories": draw(
                            st.lists(st.sampled_from(CATS), min_size=1, max_size=3, unique=True)
                        )
                    },
                    {
                        "skus": draw(
                            st.lists(st.sampled_from(SKUS), min_size=1, max_size=4, unique=True)
                        )
                    },
                    {"styles": [draw(st.sampled_from(["loft", "classic", "scandinavian"]))]},
                    {
                        "attributes": [
                            {
                                "key": "material",
                                "value": draw(st.sampled_from(["wood", "metal", "ceramic"])),
                            }
                        ]
                    },
                ]
            )
        )
    if action == "boost":
        doc.update(
            draw(
                st.sampled_from(
                    [{"multiplier": 3.0}, {"shift": 2}, {"multiplier": 1.5, "shift": 1}]
                )
            )
        )
    if action == "bury":
        doc.update(draw(st.sampled_from([{"multiplier": 0.2}, {"shift": 3}])))
    if draw(st.booleans()):
        doc["valid_to"] = (NOW + timedelta(days=draw(st.integers(-3, 3)))).isoformat()
    return parse_control(doc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    controls=st.lists(controls_strategy(), max_size=6).map(
        lambda cs: list({c.id: c for c in cs}.values())
    ),
    rows=st.lists(st.sampled_from(range(len(SKUS))), max_size=15, unique=True),
    seed=st.integers(0, 10_000),
    page=st.sampled_from(["checkout", "cart", "product"]),
)
def test_controls_properties(controls, rows, seed, page) -> None:
    rows = np.asarray(rows, np.int64)
    scores = np.random.default_rng(seed).normal(size=len(rows))  # any sign: ranker scores
    compiled = CompiledControls(controls, CATALOG)
    order, new_scores, applied = apply_controls(rows, scores, compiled, page=page, now=NOW)
    assert len(set(order.tolist())) == len(order) and set(order.tolist()) <= set(range(len(rows)))
    active = [c for c in controls if c.enabled and page in c.placements and c.active_at(NOW)]
    hidden = {
        i
        for i, r in enumerate(rows)
        for c in active
        if c.action == "hide"
        and r
        in {
            int(x)
            for x in np.flatnonzero(
                compiled.controls_[[x.control.id for x in compiled.controls_].index(c.id)].mask
            )
        }
    }
    assert not hidden & set(order.tolist()), "hidden items never appear"
    assert set(range(len(rows))) - hidden == set(order.tolist()), "nothing else is dropped"
    assert {a.control_id for a in applied} <= {c.id for c in active}, "only active controls act"
    assert len(new_scores) == len(rows)
    if not active:
        assert np.array_equal(order, np.argsort(-scores, kind="stable")) and not applied
    pins = [c for c in active if c.action == "pin"]
    if len(pins) == 1 and not [c for c in active if c.action == "hide"]:
        pinned = [i for i, r in enumerate(rows) if SKUS[r] == pins[0].target.skus[0]]
        if pinned:
            assert order.tolist().index(pinned[0]) == min(pins[0].position - 1, len(order) - 1)
    only_boost = len(active) == 1 and active[0].action in ("boost", "bury")
    if (
        only_boost
    ):  # a boost never moves a target below a non-target it was above (bury: the reverse)
        (target,) = [x for x in compiled.controls_ if x.control.id == active[0].id]
        mask = target.mask[rows]
        before = {int(i): p for p, i in enumerate(np.argsort(-scores, kind="stable"))}
        after = {int(i): p for p, i in enumerate(order)}
        sign = 1 if active[0].action == "boost" else -1
        for a in np.flatnonzero(mask):
            for b in np.flatnonzero(~mask):
                if sign * (before[b] - before[a]) > 0:
                    assert sign * (after[b] - after[a]) > 0, (
                        [c.model_dump() for c in controls],
                        rows.tolist(),
                        scores.tolist(),
                        page,
                        order.tolist(),
                        int(a),
                        int(b),
                    )
