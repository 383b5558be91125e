"""The attribution rules, one case each, on hand-built impressions and events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from feature_store.attribution import EventContext, EventContextLog, attribute
from feature_store.event_log import Event, EventLog
from feature_store.impression_log import Impression, ImpressionLog, ShownItem

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _impression(
    rid: str, session: str, skus: list[str], at: datetime, variant: str = "a"
) -> Impression:
    return Impression(
        recommendation_id=rid,
        ts=at,
        placement="cart",
        user_id=None,
        session_id=session,
        experiment="exp",
        variant=variant,
        model_version="m/1",
        rules_version="1",
        items=tuple(ShownItem(s, "items", i) for i, s in enumerate(skus, 1))
        + (ShownItem("ACC", "accessories", 1),),
    )


def _frames(tmp_path, events, contexts):  # noqa: ANN001, ANN202
    url = f"sqlite:///{tmp_path / 'a.db'}"
    imps = ImpressionLog(url)
    imps.append(
        [
            _impression("r1", "s1", ["A", "B"], T0),
            _impression("r2", "s2", ["A", "C"], T0, variant="b"),
            _impression("r3", "s1", ["B"], T0 + timedelta(hours=2)),
        ]
    )
    log = EventLog(url)
    log.append(events)
    ctx = EventContextLog(log.engine)
    ctx.append(contexts)
    return log.read_frame(), ctx.read_frame(), imps.read_frame()


def _ev(eid: str, type_: str, sku: str, session: str, hours: float, qty: int = 1) -> Event:
    return Event(eid, type_, sku, T0 + timedelta(hours=hours), qty, session_id=session)


def test_each_rule(tmp_path) -> None:  # noqa: ANN001
    events = [
        _ev("click", "view", "A", "s1", 0.1),  # named click -> r1
        _ev("view-plain", "view", "A", "s1", 0.2),  # a view naming nothing: not credited
        _ev("cart-named", "add_to_cart", "ACC", "s1", 0.3),  # accessory slot of r1
        _ev("cart-unknown", "add_to_cart", "A", "s1", 0.4),  # names an id nobody issued
        _ev("cart-wrong", "add_to_cart", "C", "s1", 0.5),  # names r1, which did not show C
        _ev("buy-window", "purchase", "B", "s1", 3.0, qty=2),  # no id: latest r* of s1 with B = r3
        _ev("buy-late", "purchase", "A", "s2", 30.0),  # s2 saw A 30 h ago: outside 24 h
        _ev("buy-other", "purchase", "C", "s1", 1.0),  # s1 never saw C
        _ev("buy-s2", "purchase", "C", "s2", 1.0),  # s2 saw C in r2 (variant b)
    ]
    contexts = [
        EventContext("click", "r1", 1, None),
        EventContext("cart-named", "r1", 1, None),
        EventContext("cart-unknown", "nope", 3, None),
        EventContext("cart-wrong", "r1", 2, None),
        EventContext("buy-window", None, None, 10.0),
        EventContext("buy-late", None, None, 5.0),
        EventContext("buy-s2", None, None, 7.5),
    ]
    ev, ctx, imp = _frames(tmp_path, events, contexts)
    out = attribute(ev, ctx, imp, window_hours=24, prices={"C": 99.0}).set_index("event_id")
    expect = {
        "click": ("named", "r1", None),
        "view-plain": (None, None, None),
        "cart-named": ("named", "r1", None),
        "cart-unknown": (None, None, "unknown_id"),
        "cart-wrong": (None, None, "sku_not_shown"),
        "buy-window": ("window", "r3", None),
        "buy-late": (None, None, "not_shown"),
        "buy-other": (None, None, "not_shown"),
        "buy-s2": ("window", "r2", None),
    }
    got = {
        eid: (row["rule"], row["recommendation_id"], row["reason"]) for eid, row in out.iterrows()
    }
    assert got == expect
    assert out.loc["cart-named", "slot"] == "accessories" and out.loc["cart-named", "position"] == 1
    assert out.loc["buy-s2", "variant"] == "b"
    assert out.loc["buy-window", "revenue"] == 20.0  # event price x quantity
    assert out.loc["buy-other", "revenue"] == 99.0  # no price sent: the catalog's
    assert out.loc["click", "revenue"] == 0.0


def test_window_is_the_setting(tmp_path) -> None:  # noqa: ANN001
    ev, ctx, imp = _frames(tmp_path, [_ev("buy-late", "purchase", "A", "s2", 30.0)], [])
    assert attribute(ev, ctx, imp, window_hours=24)["rule"].isna().all()
    assert list(attribute(ev, ctx, imp, window_hours=31)["rule"]) == ["window"]


def test_no_impressions_leaves_everything_unattributed(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'b.db'}"
    log = EventLog(url)
    log.append([_ev("x", "purchase", "A", "s1", 0)])
    out = attribute(
        log.read_frame(),
        EventContextLog(log.engine).read_frame(),
        ImpressionLog(url).read_frame(),
        window_hours=24,
    )
    assert list(out["reason"]) == ["not_shown"] and isinstance(out, pd.DataFrame)
