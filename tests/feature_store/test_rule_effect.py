"""Per-rule and per-control effect on hand-built impressions and events with a known answer,
on SQLite and real PostgreSQL; and the impression log's sources on an existing database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from feature_store.attribution import EventContext, EventContextLog
from feature_store.event_log import Event, EventLog
from feature_store.impression_log import Impression, ImpressionLog, ShownItem
from feature_store.rule_effect import source_effects

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
START, END = T0, T0 + timedelta(hours=10)


def _imp(rid: str, session: str, hours: float, items, controls=()) -> Impression:  # noqa: ANN001
    return Impression(
        recommendation_id=rid,
        ts=T0 + timedelta(hours=hours),
        placement="checkout",
        user_id=None,
        session_id=session,
        experiment=None,
        variant="default",
        model_version="m/1",
        rules_version="3",
        items=tuple(items),
        controls=tuple(controls),
    )


def _acc(sku: str, pos: int, *rules: str) -> ShownItem:
    return ShownItem(sku, "accessories", pos, rule_ids=rules)


IMPRESSIONS = [
    _imp("r0", "s1", -1, [_acc("G", 1, "paint")]),  # before the window
    _imp(
        "r1",
        "s1",
        0,
        [ShownItem("A", "items", 1, control_ids=("boost-x",)), _acc("G", 1, "paint", "reno")]
        + [_acc("M", 2, "paint")],
        controls=("boost-x", "hide-y"),
    ),
    _imp("r2", "s2", 1, [ShownItem("B", "items", 1), _acc("G", 1, "paint")]),
    _imp("r3", "s3", 2, [_acc("W", 1, "reno")], controls=("hide-y",)),
    _imp("r9", "s4", 11, [_acc("G", 1, "paint")]),  # after the window
]


def _ev(eid: str, type_: str, sku: str, session: str, hours: float, qty: int = 1) -> Event:
    return Event(eid, type_, sku, T0 + timedelta(hours=hours), qty, session_id=session)


def _events(p: str) -> tuple[list[Event], list[EventContext]]:
    events = [
        _ev(p + "cart-g", "add_to_cart", "G", "s1", 0.2),  # names r1: paint + reno line
        _ev(p + "buy-g", "purchase", "G", "s1", 0.5, qty=2),  # no id: s1's latest G is r1
        _ev(p + "buy-m", "purchase", "M", "s2", 1.5),  # s2 never saw M: not credited
        _ev(p + "buy-a", "purchase", "A", "s1", 0.7),  # names r1 item A (boosted)
        _ev(p + "view-w", "view", "W", "s3", 2.1),  # a click is not an attach
        _ev(p + "cart-late", "add_to_cart", "G", "s2", 30.0),  # 29 h after r2: outside 24 h
        _ev(p + "buy-r9", "purchase", "G", "s4", 11.5),  # credited to r9, after the window
    ]
    contexts = [
        EventContext(p + "cart-g", "r1", 1, None),
        EventContext(p + "buy-g", None, None, 4.0),
        EventContext(p + "buy-m", None, None, 3.0),
        EventContext(p + "buy-a", "r1", 1, 10.0),
        EventContext(p + "view-w", "r3", 1, None),
        EventContext(p + "buy-r9", None, None, 4.0),
    ]
    return events, contexts


def _check(imps: ImpressionLog, events: EventLog, context: EventContextLog) -> None:
    imps.append(IMPRESSIONS)
    evs, ctx = _events("e-")
    events.append(evs)
    context.append(ctx)

    def run(kind: str, ids=None):  # noqa: ANN001, ANN202
        return source_effects(
            imps,
            events,
            kind,
            start=START,
            end=END,
            window_hours=24,
            source_ids=ids,
            context=context,
        )

    rules = run("rule", ["paint", "reno", "never-fired"])
    paint, reno, never = rules["paint"], rules["reno"], rules["never-fired"]
    # paint: r1/G, r1/M, r2/G shown; r1/G added and bought (2 x 4.0)
    assert (paint.impressions, paint.baskets, paint.added, paint.bought, paint.attached) == (
        3,
        2,
        1,
        1,
        1,
    )
    assert paint.revenue == pytest.approx(8.0)
    assert paint.attach_rate == pytest.approx(1 / 3)
    # reno: r1/G (shared with paint: full credit to both) and r3/W (only clicked)
    assert (reno.impressions, reno.baskets, reno.attached) == (2, 2, 1)
    assert reno.revenue == pytest.approx(8.0) and reno.attach_rate == pytest.approx(0.5)
    assert (never.impressions, never.baskets, never.revenue, never.attach_rate) == (0, 0, 0.0, 0.0)
    assert set(run("rule")) == {"paint", "reno"}  # all rules that acted in the window

    controls = run("control", ["boost-x", "hide-y"])
    boost, hide = controls["boost-x"], controls["hide-y"]
    assert (boost.impressions, boost.baskets, boost.bought, boost.attached) == (1, 1, 1, 1)
    assert boost.revenue == pytest.approx(10.0) and boost.attach_rate == 1.0
    # a hide never shows a line, but it acted on two answers
    assert (hide.impressions, hide.baskets, hide.revenue) == (0, 2, 0.0)

    # a later window sees only r9 (bought by s4)
    late = source_effects(
        imps,
        events,
        "rule",
        start=END,
        end=END + timedelta(days=1),
        window_hours=24,
        context=context,
    )["paint"]
    assert (late.impressions, late.attached, late.revenue) == (1, 1, pytest.approx(4.0))


def test_known_answer_sqlite(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'e.db'}"
    events = EventLog(url)
    _check(ImpressionLog(url), events, EventContextLog(events.engine))


@pytest.mark.postgres
def test_known_answer_postgres(postgres_url: str) -> None:
    suffix = uuid.uuid4().hex[:10]
    imps = ImpressionLog(postgres_url, table_name=f"impressions_eff_{suffix}")
    events = EventLog(postgres_url, table_name=f"events_eff_{suffix}")
    context = EventContextLog(events.engine, table_name=f"events_eff_{suffix}_context")
    try:
        _check(imps, events, context)
    finally:
        context.drop()
        events.drop()
        imps.drop()
        imps.dispose()
        events.dispose()


def test_bad_kind_and_window_are_refused(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path / 'e.db'}"
    imps, events = ImpressionLog(url), EventLog(url)
    with pytest.raises(ValueError, match="kind must be one of"):
        source_effects(imps, events, "rules", start=START, end=END, window_hours=24)
    with pytest.raises(ValueError, match="must end after it starts"):
        source_effects(imps, events, "rule", start=END, end=START, window_hours=24)


def _sources_roundtrip(imps: ImpressionLog) -> None:
    assert imps.append(IMPRESSIONS[:2]) == 2
    assert imps.append(IMPRESSIONS[:2]) == 0  # a retried batch: no doubled sources either
    got = imps.read(["r1"])["r1"]
    assert got == IMPRESSIONS[1]
    assert got.items[1].rule_ids == ("paint", "reno")  # the placing rule first
    lines = imps.read_sources("rule", since=START, until=END)
    assert sorted(zip(lines["source_id"], lines["sku"], strict=True)) == [
        ("paint", "G"),
        ("paint", "M"),
        ("reno", "G"),
    ]


def test_sources_roundtrip_sqlite(tmp_path) -> None:  # noqa: ANN001
    _sources_roundtrip(ImpressionLog(f"sqlite:///{tmp_path / 'i.db'}"))


@pytest.mark.postgres
def test_sources_roundtrip_postgres(postgres_url: str) -> None:
    imps = ImpressionLog(postgres_url, table_name=f"impressions_src_{uuid.uuid4().hex[:10]}")
    try:
        _sources_roundtrip(imps)
    finally:
        imps.drop()
        imps.dispose()


def _old_schema_database(url: str, table: str) -> None:
    """An impression log as the first version wrote it: one table, no sources."""
    engine = sa.create_engine(url)
    md = sa.MetaData()
    old = sa.Table(
        table,
        md,
        sa.Column("recommendation_id", sa.String(64), primary_key=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("placement", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=True),
        sa.Column("session_id", sa.String(128), nullable=True),
        sa.Column("experiment", sa.String(80), nullable=True, index=True),
        sa.Column("variant", sa.String(80), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("rules_version", sa.String(80), nullable=True),
        sa.Column("items", sa.Text, nullable=False),
    )
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            old.insert(),
            {
                "recommendation_id": "old-1",
                "ts": T0,
                "placement": "checkout",
                "session_id": "s9",
                "variant": "default",
                "items": json.dumps([["A", "items", 1], ["G", "accessories", 1]]),
            },
        )
    engine.dispose()


def _upgrade(url: str, table: str) -> None:
    _old_schema_database(url, table)
    imps = ImpressionLog(url, table_name=table)  # opening it adds the sources table
    try:
        old = imps.read(["old-1"])["old-1"]
        assert [(i.sku, i.slot, i.rule_ids) for i in old.items] == [
            ("A", "items", ()),
            ("G", "accessories", ()),
        ]
        assert imps.append([IMPRESSIONS[1]]) == 1
        assert imps.count() == 2  # nothing stored before is lost
        frame = imps.read_frame()
        assert list(frame["recommendation_id"]) == ["old-1", "r1"]
        assert set(imps.read_sources("rule", since=START, until=END)["recommendation_id"]) == {"r1"}
    finally:
        imps.drop()
        imps.dispose()


def test_an_existing_sqlite_log_gains_sources_and_keeps_its_rows(tmp_path) -> None:  # noqa: ANN001
    _upgrade(f"sqlite:///{tmp_path / 'old.db'}", "impressions")


@pytest.mark.postgres
def test_an_existing_postgres_log_gains_sources_and_keeps_its_rows(postgres_url: str) -> None:
    _upgrade(postgres_url, f"impressions_old_{uuid.uuid4().hex[:10]}")
