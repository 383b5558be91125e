"""The impression log: every answer the API gave, append-only, so events can be attributed to
the list (and the variant) a shopper actually saw.

One row per answer (``recommendation_id`` is the primary key); the SKUs shown, with their slot
and position, are a JSON array in ``items``. Rows are written in batches by the serving side's
recorder (off the request path), through the same engine and URL handling as the event log
(``feature_store.event_log.make_engine``: SQLite by default, PostgreSQL by URL). Inserts are
``ON CONFLICT DO NOTHING``: a batch retried after a failed commit is not counted twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from feature_store.event_log import make_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShownItem:
    """One SKU of an answer: ``slot`` is ``items`` or ``accessories``; ``position`` is 1-based
    within its slot."""

    sku: str
    slot: str
    position: int


@dataclass(frozen=True)
class Impression:
    recommendation_id: str
    ts: datetime
    placement: str
    user_id: str | None
    session_id: str | None
    experiment: str | None
    variant: str
    model_version: str | None
    rules_version: str | None
    items: tuple[ShownItem, ...]


class ImpressionLog:
    """Append-only storage of impressions in one table (``table_name``)."""

    def __init__(self, url: str, *, table_name: str = "impressions", create: bool = True) -> None:
        self.url = url
        self.table_name = table_name
        self.engine = make_engine(url)
        self.metadata = sa.MetaData()
        self.table = sa.Table(
            table_name,
            self.metadata,
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
        self._dialect = self.engine.dialect.name
        self._created = not create
        if create:
            try:
                self._ensure_table()
            except sa.exc.OperationalError as exc:  # database down: retried on first write
                log.warning("impression store unreachable, will retry: %s", exc)

    def _ensure_table(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True

    def append(self, impressions: Sequence[Impression]) -> int:
        """Store a batch in one transaction; return how many rows were new."""
        if not impressions:
            return 0
        rows = [
            {
                "recommendation_id": i.recommendation_id,
                "ts": i.ts,
                "placement": i.placement,
                "user_id": i.user_id,
                "session_id": i.session_id,
                "experiment": i.experiment,
                "variant": i.variant,
                "model_version": i.model_version,
                "rules_version": i.rules_version,
                "items": json.dumps([[s.sku, s.slot, s.position] for s in i.items]),
            }
            for i in impressions
        ]
        self._ensure_table()
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API
        stmt = insert(self.table).on_conflict_do_nothing(index_elements=["recommendation_id"])
        with self.engine.begin() as conn:
            new = conn.execute(stmt.returning(self.table.c.recommendation_id), rows).scalars().all()
        return len(new)

    def count(self) -> int:
        self._ensure_table()
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(self.table)).scalar() or 0
            )

    def ids(self) -> set[str]:
        self._ensure_table()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.table.c.recommendation_id)).scalars())

    def read(self, ids: Iterable[str]) -> dict[str, Impression]:
        """The stored impressions among ``ids`` (unknown ids are simply absent)."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, Impression] = {}
        self._ensure_table()
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                rows = conn.execute(
                    sa.select(self.table).where(self.table.c.recommendation_id.in_(chunk))
                ).mappings()
                for r in rows:
                    out[r["recommendation_id"]] = _impression(r)
        return out

    def read_frame(
        self, *, experiment: str | None = None, since: datetime | None = None
    ) -> pd.DataFrame:
        """Impressions as a frame (``items`` decoded to a list of (sku, slot, position))."""
        self._ensure_table()
        query = sa.select(self.table).order_by(self.table.c.ts)
        if experiment is not None:
            query = query.where(self.table.c.experiment == experiment)
        if since is not None:
            query = query.where(self.table.c.ts >= since)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=self.table.c.keys())
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["items"] = [[tuple(x) for x in json.loads(s)] for s in frame["items"]]
        return frame

    def drop(self) -> None:
        self.table.drop(self.engine, checkfirst=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _impression(r: sa.RowMapping) -> Impression:
    ts = r["ts"] if r["ts"].tzinfo else r["ts"].replace(tzinfo=UTC)
    return Impression(
        recommendation_id=r["recommendation_id"],
        ts=ts,
        placement=r["placement"],
        user_id=r["user_id"],
        session_id=r["session_id"],
        experiment=r["experiment"],
        variant=r["variant"],
        model_version=r["model_version"],
        rules_version=r["rules_version"],
        items=tuple(ShownItem(s, slot, int(p)) for s, slot, p in json.loads(r["items"])),
    )
