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
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from recsys.data.interactions import EVENT_TYPES, Interactions, validate_interactions
from recsys.timestamps import ALLOWED_RANGE, to_utc

log = logging.getLogger(__name__)

# Weight of each event type in popularity and style affinity (a purchase says more than a view).
EVENT_WEIGHTS: dict[str, float] = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
assert set(EVENT_WEIGHTS) == set(EVENT_TYPES)


@dataclass(frozen=True)
class Event:
    """One storefront event. ``ts`` is converted to UTC (naive means UTC) and must lie in
    ``recsys.timestamps``' window (``ValueError`` otherwise)."""

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
            raise ValueError(
                f"unknown event type {self.type!r}; use one of {', '.join(EVENT_TYPES)}"
            )
        if self.quantity < 1:
            raise ValueError(f"quantity must be >= 1, got {self.quantity}")
        object.__setattr__(self, "ts", to_utc(self.ts))

    @property
    def shopper_key(self) -> str | None:
        """Whose online state this event updates: the user, else the session (prefixed)."""
        if self.user_id:
            return f"u:{self.user_id}"
        if self.session_id:
            return f"s:{self.session_id}"
        return None


@dataclass(frozen=True)
class RejectedEvent:
    """One event of a batch that cannot be stored as sent (the rest of the batch is)."""

    index: int
    field: str
    message: str


_TEXT_FIELDS = ("event_id", "sku", "user_id", "session_id", "order_id")


def event_problems(index: int, event: Event) -> list[RejectedEvent]:
    """Why ``event`` cannot be stored on every backend: PostgreSQL refuses NUL in text (and
    used to fail the whole batch, for ever, on retry); SQLite would store it silently."""
    return [
        RejectedEvent(index, f, "contains a NUL character (\\u0000); remove it")
        for f in _TEXT_FIELDS
        if "\x00" in (getattr(event, f) or "")
    ]


@dataclass(frozen=True)
class AppendResult:
    """What ``append`` did: ``inserted`` are the events stored now (first time seen);
    ``rejected`` the ones refused one by one (the others are stored)."""

    inserted: tuple[Event, ...]
    duplicates: int
    rejected: tuple[RejectedEvent, ...] = ()
    # duplicates whose payload differs from the stored event (a client reusing ids): kept as
    # stored, but reported
    conflicting: tuple[str, ...] = ()

    @property
    def accepted(self) -> int:
        return len(self.inserted)


class StoreUnavailable(RuntimeError):
    """The store cannot make an event durable right now (file deleted, read-only, ...); the
    message is for the operator (it may name paths: do not show it to anonymous clients)."""


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (None for PostgreSQL and in-memory SQLite)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def unwritable_parts(path: Path) -> list[str]:
    """Which of an SQLite database's files (db, WAL, shared memory, folder) cannot be written."""
    parts = (
        path,
        path.with_name(path.name + "-wal"),
        path.with_name(path.name + "-shm"),
        path.parent,
    )
    return [p.name or str(p) for p in parts if p.exists() and not os.access(p, os.W_OK)]


def guard_sqlite_writable(engine: Engine, path: Path) -> None:
    """Refuse to open ``path`` at all while it is not writable.

    SQLite silently opens a write-protected file read-only, and the process-wide shared-memory
    (WAL index) mapping it then creates is read-only too: every later connection of the process
    to that file fails its writes, even after the fault is fixed (and a read-only mapping is
    where SIGBUS came from). Failing the connect instead leaves no such connection behind."""

    def _check(*_args: object) -> None:
        blocked = unwritable_parts(path)
        if blocked:
            raise StoreUnavailable(
                f"database {path} is not writable ({', '.join(blocked)}); "
                "restore write access (nothing is written until then)"
            )

    sa.event.listen(engine, "do_connect", _check)


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
        file = sqlite_file(url)
        if file is not None:
            guard_sqlite_writable(engine, file)
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
        self._file = sqlite_file(url)
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._created = not create
        if create:
            try:
                self._ensure_table()
            except (sa.exc.OperationalError, StoreUnavailable) as exc:  # retried on first use
                log.warning("event store %s unreachable, will retry: %s", self._safe_url, exc)

    @property
    def _safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _ensure_table(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True
            if self._file is not None and self._file.exists():
                st = self._file.stat()
                self._identity = (st.st_dev, st.st_ino)

    def check_writable(self) -> None:
        """Raise ``StoreUnavailable`` unless a commit would reach the database file.

        SQLite cannot tell us: a connection keeps writing into a deleted (unlinked) file and
        "succeeds", and a file that cannot be opened for writing is silently opened read-only
        (those connections stay read-only after the fault is fixed). So for an SQLite file
        we compare the path's inode with the one we opened, check write access to the file,
        its WAL/shared-memory files and the folder, and drop the pooled connections on any
        problem (the next healthy connection opens the file afresh). A file replaced at the
        path (restored from a backup) is reopened. Costs a few ``stat`` calls."""
        path = self._file
        if path is None:
            return
        try:
            st = path.stat()
        except FileNotFoundError:
            if self._identity is None:
                return  # never opened: SQLite creates it on first use
            self.engine.dispose()
            raise StoreUnavailable(
                f"database file {path} was deleted while in use; events cannot be made durable. "
                "Restore the file (it is reopened automatically) or restart the service to "
                "start a new, empty store"
            ) from None
        identity = (st.st_dev, st.st_ino)
        if self._identity is not None and identity != self._identity:
            log.warning("database file %s was replaced: reopening it", path)
            self.engine.dispose()
            self._created = False
        blocked = unwritable_parts(path)
        if blocked:
            self.engine.dispose()
            raise StoreUnavailable(
                f"database {path} is not writable ({', '.join(blocked)}); events cannot be stored "
                "until write access is restored"
            )
        self._ensure_table()

    def probe_write(self) -> None:
        """A real write that is rolled back (readiness): raise if the store cannot take one."""
        self.check_writable()
        self._ensure_table()
        with self.engine.connect() as conn:
            tx = conn.begin()
            try:
                conn.execute(
                    self.table.insert().values(
                        event_id=f"__probe__{uuid.uuid4().hex}",
                        type="view",
                        sku="__probe__",
                        quantity=1,
                        ts=datetime.now(UTC),
                        received_at=datetime.now(UTC),
                    )
                )
            finally:
                tx.rollback()

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
        rejected: list[RejectedEvent] = []
        for i, e in enumerate(events):
            problems = event_problems(i, e)
            if problems:
                rejected.extend(problems)
                continue
            unique.setdefault(e.event_id, e)
        n_rejected = len({r.index for r in rejected})
        if not unique:
            return AppendResult((), len(events) - n_rejected, tuple(rejected))
        now = datetime.now(UTC)
        rows = [
            {
                "event_id": e.event_id,
                "type": e.type,
                "sku": e.sku,
                "user_id": e.user_id,
                "session_id": e.session_id,
                "order_id": e.order_id,
                "quantity": e.quantity,
                "ts": e.ts,
                "received_at": now,
            }
            for e in unique.values()
        ]
        self.check_writable()
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
        conflicting = self._conflicting([e for eid, e in unique.items() if eid not in inserted_ids])
        if conflicting:
            log.warning(
                "%d duplicate event_id(s) sent with a different payload (kept the stored one), e.g. %r",
                len(conflicting),
                conflicting[0][:64],
            )
        return AppendResult(
            inserted, len(events) - len(inserted) - n_rejected, tuple(rejected), conflicting
        )

    def _conflicting(self, duplicates: list[Event]) -> tuple[str, ...]:
        """Ids among ``duplicates`` whose stored event differs (one query, only when needed)."""
        if not duplicates:
            return ()
        c = self.table.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    c.event_id, c.type, c.sku, c.user_id, c.session_id, c.order_id, c.quantity, c.ts
                ).where(c.event_id.in_([e.event_id for e in duplicates]))
            ).all()
        stored = {r.event_id: r for r in rows}
        out = []
        for e in duplicates:
            r = stored.get(e.event_id)
            if r is None:
                continue
            ts = r.ts if r.ts.tzinfo is not None else r.ts.replace(tzinfo=UTC)
            if (r.type, r.sku, r.user_id, r.session_id, r.order_id, r.quantity, ts) != (
                e.type,
                e.sku,
                e.user_id,
                e.session_id,
                e.order_id,
                e.quantity,
                e.ts,
            ):
                out.append(e.event_id)
        return tuple(out)

    def count(self) -> int:
        self._ensure_table()
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar_one()
            )

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def read_frame(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """All stored events (optionally with ``since <= ts < until``) ordered by ts, one row
        each, columns as the table; ``ts`` as UTC datetimes."""
        self._ensure_table()
        query = sa.select(self.table).order_by(self.table.c.ts, self.table.c.event_id)
        if since is not None:
            query = query.where(self.table.c.ts >= to_utc(since))
        if until is not None:
            query = query.where(self.table.c.ts < to_utc(until))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=self.table.c.keys())
        for col in ("ts", "received_at"):
            frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce")
        bad = frame["ts"].isna()
        if bad.any():  # stored before timestamps were checked (e.g. year 0001 or 9999)
            log.warning(
                "skipping %d stored event(s) whose ts is outside %s (e.g. event_id %s)",
                int(bad.sum()),
                ALLOWED_RANGE,
                frame.loc[bad, "event_id"].iloc[0],
            )
            frame = frame.loc[~bad].reset_index(drop=True)
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
