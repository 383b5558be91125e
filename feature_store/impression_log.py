"""The impression log: every answer the API gave, append-only, so events can be attributed to
the list (and the variant) a shopper actually saw.

One row per answer (``recommendation_id`` is the primary key); the SKUs shown, with their slot
and position, are a JSON array in ``items``. Rows are written in batches by the serving side's
recorder (off the request path), through the same engine and URL handling as the event log
(``feature_store.event_log.make_engine``: SQLite by default, PostgreSQL by URL). Inserts are
``ON CONFLICT DO NOTHING``: a batch retried after a failed commit is not counted twice.

**Sources** (what made a line appear or move) live in a second table, ``<table>_sources``: one
row per (answer, rule or control, line), so a rule's or a control's effect over a window is an
indexed lookup rather than a scan of every answer's JSON. Rows with ``slot = 'answer'`` and
``position = 0`` record a control that acted on the answer without changing a shown line (a
hide, a boost of an item that still did not make the list). Sources are written in the same
transaction as their impression, and only for impressions that were new, so a retried batch
never doubles them. The table was added after the impression log shipped: opening an existing
database creates it (``CREATE TABLE IF NOT EXISTS``; the impressions table is not altered), and
impressions stored before have no sources: they read as before and count for no rule.
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


RULE = "rule"
CONTROL = "control"
ANSWER_SLOT = "answer"  # a source row about the whole answer, not one shown line


@dataclass(frozen=True)
class ShownItem:
    """One SKU of an answer: ``slot`` is ``items`` or ``accessories``; ``position`` is 1-based
    within its slot. ``rule_ids``: the accessory rules that suggested this line (the placing
    rule first); ``control_ids``: the answer controls that pinned, boosted or buried it."""

    sku: str
    slot: str
    position: int
    rule_ids: tuple[str, ...] = ()
    control_ids: tuple[str, ...] = ()


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
    controls: tuple[str, ...] = ()  # every control that acted on the answer, sorted

    def sources(self) -> list[dict[str, object]]:
        """The rows of ``<table>_sources`` for this answer (see the module doc). Built on the
        recorder's thread for every answer, so lines without rules or controls (most of
        them) cost one check each."""
        rid, ts = self.recommendation_id, self.ts
        rows: list[dict[str, object]] = []
        on_lines: set[str] = set()
        for item in self.items:
            for kind, ids in ((RULE, item.rule_ids), (CONTROL, item.control_ids)):
                if not ids:
                    continue
                for ordinal, source_id in enumerate(dict.fromkeys(ids)):
                    rows.append(
                        {
                            "recommendation_id": rid,
                            "kind": kind,
                            "source_id": source_id,
                            "slot": item.slot,
                            "position": item.position,
                            "ordinal": ordinal,
                            "sku": item.sku,
                            "ts": ts,
                        }
                    )
                    if kind == CONTROL:
                        on_lines.add(source_id)
        for control_id in dict.fromkeys(self.controls):
            if control_id not in on_lines:
                rows.append(
                    {
                        "recommendation_id": rid,
                        "kind": CONTROL,
                        "source_id": control_id,
                        "slot": ANSWER_SLOT,
                        "position": 0,
                        "ordinal": 0,
                        "sku": None,
                        "ts": ts,
                    }
                )
        return rows


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
        self.sources = sa.Table(
            f"{table_name}_sources",
            self.metadata,
            sa.Column("recommendation_id", sa.String(64), primary_key=True),
            sa.Column("kind", sa.String(8), primary_key=True),  # rule | control
            sa.Column("source_id", sa.String(80), primary_key=True),
            sa.Column("slot", sa.String(16), primary_key=True),  # items | accessories | answer
            sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("ordinal", sa.Integer, nullable=False),  # order of the ids on one line
            sa.Column("sku", sa.String(128), nullable=True),
            sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
            sa.Index(f"ix_{table_name}_sources_lookup", "kind", "source_id", "ts"),
            sa.Index(f"ix_{table_name}_sources_ts", "ts"),
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
            new = set(
                conn.execute(stmt.returning(self.table.c.recommendation_id), rows).scalars().all()
            )
            sources = [r for i in impressions if i.recommendation_id in new for r in i.sources()]
            if sources:  # same transaction: an impression is never stored without its sources
                conn.execute(insert(self.sources).on_conflict_do_nothing(), sources)
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
        """The stored impressions among ``ids`` (unknown ids are simply absent), with their
        sources."""
        wanted = list(dict.fromkeys(ids))
        out: dict[str, Impression] = {}
        self._ensure_table()
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                rows = conn.execute(
                    sa.select(self.table).where(self.table.c.recommendation_id.in_(chunk))
                ).mappings()
                sources: dict[str, list[sa.RowMapping]] = {}
                for src in conn.execute(
                    sa.select(self.sources)
                    .where(self.sources.c.recommendation_id.in_(chunk))
                    .order_by(self.sources.c.ordinal)
                ).mappings():
                    sources.setdefault(src["recommendation_id"], []).append(src)
                for r in rows:
                    rid = r["recommendation_id"]
                    out[rid] = _impression(r, sources.get(rid, []))
        return out

    def read_frame(
        self,
        *,
        experiment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        """Impressions as a frame (``items`` decoded to a list of (sku, slot, position)),
        optionally with ``since <= ts < until``."""
        self._ensure_table()
        query = sa.select(self.table).order_by(self.table.c.ts)
        if experiment is not None:
            query = query.where(self.table.c.experiment == experiment)
        if since is not None:
            query = query.where(self.table.c.ts >= since)
        if until is not None:
            query = query.where(self.table.c.ts < until)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=self.table.c.keys())
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["items"] = [[tuple(x) for x in json.loads(s)] for s in frame["items"]]
        return frame

    def read_sources(
        self,
        kind: str,
        *,
        since: datetime,
        until: datetime,
        source_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Source rows of ``kind`` (``rule`` or ``control``) with ``since <= ts < until``
        (optionally only ``source_ids``): recommendation_id, source_id, slot, position, sku,
        ts (UTC)."""
        self._ensure_table()
        c = self.sources.c
        cols = [c.recommendation_id, c.source_id, c.slot, c.position, c.sku, c.ts]
        query = sa.select(*cols).where(c.kind == kind, c.ts >= since, c.ts < until)
        if source_ids is not None:
            query = query.where(c.source_id.in_(list(source_ids)))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(query).mappings().all(), columns=[col.name for col in cols]
            )
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["position"] = frame["position"].astype("int64")
        return frame

    def drop(self) -> None:
        self.sources.drop(self.engine, checkfirst=True)
        self.table.drop(self.engine, checkfirst=True)

    def dispose(self) -> None:
        self.engine.dispose()


def _impression(r: sa.RowMapping, sources: Sequence[sa.RowMapping] = ()) -> Impression:
    ts = r["ts"] if r["ts"].tzinfo else r["ts"].replace(tzinfo=UTC)
    by_line: dict[tuple[str, int, str], list[str]] = {}
    answer_controls: list[str] = []
    for src in sources:
        key = (src["slot"], int(src["position"]), src["kind"])
        by_line.setdefault(key, []).append(src["source_id"])
        if src["kind"] == CONTROL:
            answer_controls.append(src["source_id"])
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
        items=tuple(
            ShownItem(
                s,
                slot,
                int(p),
                tuple(by_line.get((slot, int(p), RULE), ())),
                tuple(by_line.get((slot, int(p), CONTROL), ())),
            )
            for s, slot, p in json.loads(r["items"])
        ),
        controls=tuple(sorted(set(answer_controls))),
    )
