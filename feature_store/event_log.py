"""The event log: every storefront event the API accepted, stored durably and exported for the
next training in the interactions contract.

Why a log and not just counters: training needs the raw events (point-in-time features), and
"answered 2xx" must mean "survives a crash". ``append`` returns only after the transaction is
committed (SQLite in WAL mode with ``synchronous=FULL`` fsyncs the WAL on commit; PostgreSQL
commits durably by default). Idempotency: ``event_id`` is the primary key and rows are inserted
with ``ON CONFLICT DO NOTHING``, so a client may retry a batch as often as it likes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recsys.data.interactions import EVENT_TYPES, Interactions, validate_interactions

log = logging.getLogger(__name__)

# Weight of each event type in popularity and style affinity (a purchase says more than a view).
EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
assert set(EVENT_WEIGHTS) == set(EVENT_TYPES)


@dataclass(frozen=True)
class Event:
    """One storefront event. ``ts`` is timezone-aware (UTC assumed when naive)."""

    event_id: str
    type: str
    sku: str
    ts: datetime
    quantity: int = 1
    user_id: str | None = None
    session_id: str | None = None
    order_id: str | None = None

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}; use one of {', '.join(EVENT_TYPES)}")
        if self.quantity < 1:
            raise ValueError(f"quantity must be >= 1, got {self.quantity}")
        if self.ts.tzinfo is None:
            object.__setattr__(self, "ts", self.ts.replace(tzinfo=UTC))

    @property
    def shopper_key(self) -> str | None:
        """Whose online state this event updates: the user, else the session (prefixed)."""
        if self.user_id:
            return f"u:{self.user_id}"
        if self.session_id:
            return f"s:{self.session_id}"
        return None


@dataclass(frozen=True)
class AppendResult:
    """What ``append`` did: ``inserted`` are the events stored now (first time seen)."""

    inserted: tuple[Event, ...]
    duplicates: int

    @property
    def accepted(self) -> int:
        return len(self.inserted)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DB-API connection
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine with durable settings for SQLite (WAL, fsync on commit)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


class EventLog:
    """Durable, idempotent storage of events in one table (``table_name``).

    Works with SQLite (default) and PostgreSQL through the same code; the table is created on
    first use (``create=True``).
    """

    def __init__(self, url: str, *, table_name: str = "events", create: bool = True) -> None:
        self.url = url
        self.table_name = table_name
        self.engine = make_engine(url)
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            table_name,
            self.metadata,
            sa.Column("event_id", sa.String(128), primary_key=True),
            sa.Column("type", sa.String(32), nullable=False),
            sa.Column("sku", sa.String(128), nullable=False),
            sa.Column("user_id", sa.String(128), nullable=True),
            sa.Column("session_id", sa.String(128), nullable=True),
            sa.Column("order_id", sa.String(128), nullable=True),
            sa.Column("quantity", sa.Integer, nullable=False),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        )
        self._dialect = self.engine.dialect.name
        self._created = not create
        if create:
            try:
                self._ensure_table()
            except sa.exc.OperationalError as exc:  # database down: retried on first use
                log.warning("event store %s unreachable, will retry: %s", self._safe_url, exc)

    @property
    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _ensure_table(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True

    def _insert(self):  # noqa: ANN202 - dialect-specific Insert
        if self._dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(self.table).on_conflict_do_nothing(index_elements=["event_id"])
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(self.table).on_conflict_do_nothing(index_elements=["event_id"])
        return None

    def append(self, events: Sequence[Event]) -> AppendResult:
        """Store ``events``; return after the commit. Already-stored ``event_id``s (and repeats
        inside the batch) are skipped and counted as duplicates."""
        unique: dict[str, Event] = {}
        for e in events:
            unique.setdefault(e.event_id, e)
        if not unique:
            return AppendResult((), len(events))
        now = datetime.now(UTC)
        rows = [
            {
                "event_id": e.event_id, "type": e.type, "sku": e.sku, "user_id": e.user_id,
                "session_id": e.session_id, "order_id": e.order_id, "quantity": e.quantity,
                "ts": e.ts, "received_at": now,
            }
            for e in unique.values()
        ]
        self._ensure_table()
        stmt = self._insert()
        with self.engine.begin() as conn:
            if stmt is not None:
                inserted_ids = set(
                    conn.execute(stmt.returning(self.table.c.event_id), rows).scalars().all()
                )
            else:  # other dialects: find existing ids first (same transaction)
                existing = set(
                    conn.execute(
                        sa.select(self.table.c.event_id).where(
                            self.table.c.event_id.in_(list(unique))
                        )
                    ).scalars()
                )
                fresh = [r for r in rows if r["event_id"] not in existing]
                if fresh:
                    conn.execute(self.table.insert(), fresh)
                inserted_ids = {r["event_id"] for r in fresh}
        inserted = tuple(e for eid, e in unique.items() if eid in inserted_ids)
        return AppendResult(inserted, len(events) - len(inserted))

    def count(self) -> int:
        self._ensure_table()
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one())

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def read_frame(self, since: datetime | None = None) -> pd.DataFrame:
        """All stored events (optionally with ``ts >= since``) ordered by ts, one row each,
        columns as the table; ``ts`` as UTC datetimes."""
        self._ensure_table()
        query = sa.select(self.table).order_by(self.table.c.ts, self.table.c.event_id)
        if since is not None:
            query = query.where(self.table.c.ts >= since)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=self.table.c.keys())
        for col in ("ts", "received_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def to_interactions(self, since: datetime | None = None) -> Interactions:
        """The stored events in the interactions contract (what training reads).

        ``order_id`` is the event's order id, else its session, else its user, else the event
        id itself (a lone event is a one-item "order")."""
        frame = self.read_frame(since)
        order = frame["order_id"].fillna(frame["session_id"]).fillna(frame["user_id"])
        order = order.fillna(frame["event_id"])
        raw = pd.DataFrame(
            {
                "order_id": order,
                "user_id": frame["user_id"],
                "sku": frame["sku"],
                "quantity": frame["quantity"],
                "ts": frame["ts"],
                "event": frame["type"],
            }
        )
        if raw.empty:  # nothing to validate; keep the contract's dtypes
            raw["quantity"] = raw["quantity"].astype("int64")
            raw["ts"] = pd.to_datetime(raw["ts"], utc=True)
            return Interactions(raw.astype({"order_id": object, "sku": object, "event": object}))
        return validate_interactions(raw, f"event log {self.table_name}")

    def export(self, path: str | Path, since: datetime | None = None) -> int:
        """Write the events as an interactions file (Parquet, or CSV by suffix); return rows."""
        interactions = self.to_interactions(since)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        interactions.save(path)
        return len(interactions)

    def drop(self) -> None:
        """Remove the table (tests use a unique table name per run)."""
        self.table.drop(self.engine, checkfirst=True)

    def dispose(self) -> None:
        self.engine.dispose()
