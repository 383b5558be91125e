"""Attribution: which storefront events an answer earned, by explicit rules.

Events are stored by the event log as they are; what ties them to answers lives next to them in
``<events table>_context`` (event id -> ``recommendation_id``, ``position``, unit ``price``),
written by the events route before the events themselves (idempotent by event id, so a retried
batch is never counted twice).

The rules (``attribute``), with N = ``Settings.attribution_window_hours`` (default 24):

1. **Named answer.** An event naming a ``recommendation_id`` that is in the impression log and
   whose SKU was shown in that answer is credited to that answer (rule ``named``). A click is
   sent as a ``view`` naming the answer; only named views count as clicks.
2. **Same shopper, N hours.** An ``add_to_cart`` or ``purchase`` that names no answer is
   credited to the latest answer shown to the same shopper (user id, else session id) that
   contained the SKU, at most N hours before the event (rule ``window``).
3. **Unattributed.** Everything else: an unknown ``recommendation_id`` (reason ``unknown_id``;
   accepted, never refused: e.g. its impression was lost to a kill -9), a named answer that did
   not show the SKU (``sku_not_shown``), an event outside the window or never shown
   (``not_shown``). Unattributed purchases still count in order value.

Revenue of a purchase = unit price x quantity; the unit price is the event's ``price``, else the
served catalog's price when the event arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

ATTRIBUTED_TYPES = ("add_to_cart", "purchase")


@dataclass(frozen=True)
class EventContext:
    event_id: str
    recommendation_id: str | None
    position: int | None
    price: float | None


class EventContextLog:
    """The attribution side of events, in the event log's database (same engine)."""

    def __init__(self, engine: Engine, *, table_name: str = "events_context") -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            table_name,
            self.metadata,
            sa.Column("event_id", sa.String(128), primary_key=True),
            sa.Column("recommendation_id", sa.String(64), nullable=True, index=True),
            sa.Column("position", sa.Integer, nullable=True),
            sa.Column("price", sa.Float, nullable=True),
        )
        self._created = False

    def _ensure_table(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True

    def append(self, rows: Iterable[EventContext]) -> None:
        """Store (idempotent: an event id already stored keeps its first context)."""
        data = [r.__dict__ for r in {r.event_id: r for r in rows}.values()]
        if not data:
            return
        self._ensure_table()
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API
        with self.engine.begin() as conn:
            conn.execute(
                insert(self.table).on_conflict_do_nothing(index_elements=["event_id"]), data
            )

    def read_frame(self) -> pd.DataFrame:
        self._ensure_table()
        with self.engine.connect() as conn:
            return pd.DataFrame(
                conn.execute(sa.select(self.table)).mappings().all(), columns=self.table.c.keys()
            )

    def drop(self) -> None:
        self.table.drop(self.engine, checkfirst=True)


def shopper(user_id: pd.Series, session_id: pd.Series) -> pd.Series:
    """The shopper key: ``u:<user>``, else ``s:<session>``, else None."""
    u = "u:" + user_id.astype(object).where(user_id.notna(), None).astype(str)
    s = "s:" + session_id.astype(object).where(session_id.notna(), None).astype(str)
    return u.where(user_id.notna(), s.where(session_id.notna(), None))


def shown_items(impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per SKU shown: recommendation_id, ts, shopper, experiment, variant, placement,
    sku, slot, position."""
    cols = [
        "recommendation_id",
        "ts",
        "shopper",
        "experiment",
        "variant",
        "placement",
        "sku",
        "slot",
        "position",
    ]
    if impressions.empty:
        return pd.DataFrame(columns=cols)
    imp = impressions.assign(shopper=shopper(impressions["user_id"], impressions["session_id"]))
    exploded = (
        imp[["recommendation_id", "ts", "shopper", "experiment", "variant", "placement", "items"]]
        .explode("items")
        .dropna(subset=["items"])
    )
    parts = pd.DataFrame(
        exploded["items"].tolist(), index=exploded.index, columns=["sku", "slot", "position"]
    )
    return pd.concat([exploded.drop(columns="items"), parts], axis=1)[cols].reset_index(drop=True)


def attribute(
    events: pd.DataFrame,
    context: pd.DataFrame,
    impressions: pd.DataFrame,
    *,
    window_hours: float,
    prices: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Every event with its credit (see module doc). ``events`` as ``EventLog.read_frame``,
    ``context`` as ``EventContextLog.read_frame``, ``impressions`` as
    ``ImpressionLog.read_frame``. Returns the events with ``shopper``, ``price``, ``revenue``
    (purchases), ``rule`` (named / window / None), ``reason`` (why unattributed), and the
    credited answer's ``recommendation_id``, ``experiment``, ``variant``, ``slot``,
    ``position``, ``placement``."""
    ev = (
        events.merge(context, on="event_id", how="left")
        if len(context)
        else events.assign(recommendation_id=None, position=np.nan, price=np.nan)
    )
    ev = ev.rename(columns={"recommendation_id": "named_id", "position": "named_position"})
    ev["shopper"] = shopper(ev["user_id"], ev["session_id"])
    price = pd.to_numeric(ev["price"], errors="coerce")
    if prices:
        price = price.fillna(ev["sku"].map(prices))
    ev["price"] = price
    ev["revenue"] = np.where(
        ev["type"] == "purchase", ev["price"].fillna(0.0) * ev["quantity"], 0.0
    )
    shown = shown_items(impressions)
    credit_cols = ["recommendation_id", "experiment", "variant", "slot", "position", "placement"]
    ev = ev.reset_index(drop=True)
    for c in credit_cols:
        ev[c] = None
    ev["rule"] = None
    ev["reason"] = None

    # 1. named answers
    named = ev["named_id"].notna()
    known_ids = set(impressions["recommendation_id"]) if len(impressions) else set()
    unknown = named & ~ev["named_id"].isin(known_ids)
    ev.loc[unknown, "reason"] = "unknown_id"
    if named.any() and len(shown):
        hit = (
            ev.loc[named & ~unknown, ["named_id", "sku"]]
            .reset_index()
            .merge(
                shown.drop_duplicates(["recommendation_id", "sku"]),
                left_on=["named_id", "sku"],
                right_on=["recommendation_id", "sku"],
                how="left",
            )
            .set_index("index")
        )
        found = hit["recommendation_id"].notna()
        ok_idx = hit.index[found]
        for c in credit_cols:
            ev.loc[ok_idx, c] = hit.loc[found, c].to_numpy()
        ev.loc[ok_idx, "rule"] = "named"
        ev.loc[hit.index[~found], "reason"] = "sku_not_shown"

    # 2. same shopper within the window (carts and purchases that name no answer)
    todo = ~named & ev["type"].isin(ATTRIBUTED_TYPES) & ev["shopper"].notna()
    if todo.any() and len(shown):
        left = ev.loc[todo, ["ts", "shopper", "sku"]].reset_index().sort_values("ts")
        right = shown[shown["shopper"].notna()].sort_values("ts").rename(columns={"ts": "shown_ts"})
        right = right.assign(ts=right["shown_ts"])
        m = pd.merge_asof(
            left,
            right,
            on="ts",
            by=["shopper", "sku"],
            direction="backward",
            tolerance=pd.Timedelta(hours=window_hours),
        ).set_index("index")
        found = m["recommendation_id"].notna()
        ok_idx = m.index[found]
        for c in credit_cols:
            ev.loc[ok_idx, c] = m.loc[found, c].to_numpy()
        ev.loc[ok_idx, "rule"] = "window"
    rest = ev["rule"].isna() & ev["reason"].isna() & (named | ev["type"].isin(ATTRIBUTED_TYPES))
    ev.loc[rest, "reason"] = "not_shown"
    return ev
