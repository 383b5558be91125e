"""The report on a hand-built experiment: every metric worked out in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from feature_store.attribution import EventContext, EventContextLog
from feature_store.event_log import Event, EventLog
from feature_store.experiment_report import format_report, report
from feature_store.impression_log import Impression, ImpressionLog, ShownItem
from recsys.experiment import Experiment, Variant

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
EXP = Experiment(
    name="exp",
    placements=["cart", "checkout"],
    status="running",
    variants=[Variant(name="a", share=0.5), Variant(name="b", share=0.5)],
)


def _imp(rid: str, session: str, variant: str, skus: list[str], page: str = "cart") -> Impression:
    return Impression(
        rid,
        T0,
        page,
        None,
        session,
        "exp",
        variant,
        "m/1",
        "1",
        tuple(ShownItem(s, "items", i) for i, s in enumerate(skus, 1)),
    )


def _ev(eid: str, type_: str, sku: str, session: str, hours: float, qty: int = 1) -> Event:
    return Event(eid, type_, sku, T0 + timedelta(hours=hours), qty, session_id=session)


def test_report_by_hand(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'r.db'}"
    imps = ImpressionLog(url)
    imps.append(
        [
            _imp("r1", "s1", "a", ["A", "B"]),
            _imp("r2", "s2", "a", ["A"]),
            _imp("r3", "s3", "b", ["C"]),
            _imp("r4", "s4", "b", ["C", "D"], page="checkout"),
            Impression("other", T0, "cart", None, "s9", "another-exp", "x", None, None, ()),
        ]
    )
    log = EventLog(url)
    log.append(
        [
            _ev("early", "purchase", "A", "s1", -1.0),  # before s1's first impression: ignored
            _ev("click", "view", "A", "s1", 0.1),  # named click (a)
            _ev("buy-B", "purchase", "B", "s1", 0.5),  # window rule: 10 attributed (a)
            _ev("buy-Z", "purchase", "Z", "s1", 0.5),  # never shown: order value only
            _ev("cart-C", "add_to_cart", "C", "s3", 0.2),  # named cart (b)
            _ev("buy-D", "purchase", "D", "s4", 0.3, qty=2),  # named, 2 x 20 (b)
            _ev("ghost", "add_to_cart", "C", "s3", 0.3),  # unknown id
        ]
    )
    ctx = EventContextLog(log.engine)
    ctx.append(
        [
            EventContext("early", None, None, 99.0),
            EventContext("click", "r1", 1, None),
            EventContext("buy-B", None, None, 10.0),
            EventContext("buy-Z", None, None, 5.0),
            EventContext("cart-C", "r3", 1, None),
            EventContext("buy-D", "r4", 2, 20.0),
            EventContext("ghost", "lost-to-kill-9", 1, None),
        ]
    )
    rep = report(EXP, imps.read_frame(), log.read_frame(), ctx.read_frame(), window_hours=24)
    a, b = rep.variants
    assert (a.units, a.impressions, b.units, b.impressions) == (2, 2, 2, 2)
    # a: s1 (2 items shown, 1 click, orders B+Z = 15, attributed 10, attached) and s2 (1 shown)
    assert a.metrics == pytest.approx(
        {
            "ctr": 1 / 3,
            "cart_rate": 0.0,
            "attach_rate": 1.0,
            "revenue_per_session": 5.0,
            "aov": 15.0,
        }
    )
    # b: s3 (1 shown, 1 cart) and s4 (2 shown, 40 attributed, attached at checkout)
    assert b.metrics == pytest.approx(
        {
            "ctr": 0.0,
            "cart_rate": 1 / 3,
            "attach_rate": 1.0,
            "revenue_per_session": 20.0,
            "aov": 40.0,
        }
    )
    assert b.vs_control["revenue_per_session"]["diff"] == pytest.approx(15.0)
    assert rep.srm["chi2"] == pytest.approx(0.0) and not rep.srm["flagged"]
    assert rep.unattributed["unknown_id"] == 1
    text = format_report(rep)
    assert "SRM check" in text and "revenue_per_session" in text
