"""The versioned rule store (SQLAlchemy 2 Core; SQLite by default, PostgreSQL by URL).

Two tables: ``<prefix>rules`` holds the current document of each rule and its version number;
``<prefix>rule_versions`` holds every version ever written (who, when, what changed, the whole
document), never updated. A write names the version it was based on; the row is only updated
``WHERE version = base`` so two merchandisers editing the same rule cannot overwrite each other
(the second gets ``RuleConflict`` with the current version). The highest version-row id is the
store's change counter that every API process polls to recompile its engine.
"""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from feature_store.event_log import guard_sqlite_writable
from recsys.controls import Control, parse_control
from recsys.rules.model import parse_rule

log = logging.getLogger(__name__)
Action = Literal["create", "update", "delete", "enable", "disable", "rollback", "import", "seed"]


class RuleNotFound(KeyError):
    def __init__(self, rule_id: str, noun: str = "rule") -> None:
        super().__init__(rule_id)
        self.rule_id = rule_id
        self.noun = noun

    def __str__(self) -> str:
        return f"no {self.noun} {self.rule_id!r}"


class RuleConflict(Exception):
    """The write was based on a stale version (or the id is taken); ``current`` is what is stored."""

    def __init__(self, message: str, current: StoredRule[Any] | None) -> None:
        super().__init__(message)
        self.current = current


class Versioned(Protocol):
    """What the store keeps: a validated document with an id and an on/off switch (a ``Rule``,
    an answer ``Control``)."""

    @property
    def id(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    def to_document(self) -> dict[str, Any]: ...
    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Any: ...


D = TypeVar("D", bound=Versioned)


class ImportConflict(Exception):
    """An import based on stale versions: ``stale`` lists (rule id, version in the file,
    version stored now or None if deleted). Nothing was written."""

    def __init__(self, stale: list[tuple[str, int, int | None]]) -> None:
        names = ", ".join(
            f"{rid} (file {base}, stored {now if now is not None else 'deleted'})"
            for rid, base, now in stale
        )
        super().__init__(
            f"rules changed since this file was exported: {names}; export again and reapply your edits"
        )
        self.stale = stale


@dataclass(frozen=True)
class StoredRule(Generic[D]):
    """The current version of a stored document (``rule`` is a ``Rule`` or a ``Control``)."""

    rule: D
    version: int
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class RuleVersion:
    """One immutable entry of a rule's history (``document`` is None for a deletion)."""

    rule_id: str
    version: int
    action: str
    author: str
    at: datetime
    document: dict[str, Any] | None
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    """Dotted paths whose value differs between two rule documents."""
    a, b = _flatten(old or {}), _flatten(new or {})
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def field_diff(
    old: dict[str, Any] | None, new: dict[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """(dotted path, old value, new value) for every field that differs (history's old -> new)."""
    a, b = _flatten(old or {}), _flatten(new or {})
    return [(k, a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


class RuleStore(Generic[D]):
    """Rules (or any ``Versioned`` documents) with immutable history and optimistic concurrency.

    ``url`` is any SQLAlchemy URL; ``table_prefix`` lets several stores (or test runs) share a
    database. Tables are created on ``create_tables`` (idempotent). ``noun`` names the kind
    (tables ``<prefix><noun>s`` and ``<prefix><noun>_versions``; messages), ``parse``
    validates a stored document; ``ControlStore`` is the same machinery for answer controls.
    """

    def __init__(
        self,
        url: str,
        table_prefix: str = "recsys_",
        *,
        noun: str = "rule",
        parse: Callable[[dict[str, Any]], D] = parse_rule,  # type: ignore[assignment]
    ) -> None:
        self.url = url
        self.noun = noun
        self.parse = parse
        self.table_prefix = table_prefix
        self.engine: Engine = _make_engine(url)
        self.metadata = MetaData()
        self.rules = Table(
            f"{table_prefix}{noun}s",
            self.metadata,
            Column("id", String(80), primary_key=True),
            Column("version", Integer, nullable=False),
            Column("document", Text, nullable=False),
            Column("enabled", Boolean, nullable=False),
            Column("deleted", Boolean, nullable=False, default=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
            Column("updated_by", String(200), nullable=False),
        )
        self.versions = Table(
            f"{table_prefix}{noun}_versions",
            self.metadata,
            Column("seq", Integer, primary_key=True, autoincrement=True),
            Column(
                "rule_id", String(80), nullable=False, index=True
            ),  # the document's id, whatever the kind
            Column("version", Integer, nullable=False),
            Column("action", String(20), nullable=False),
            Column("author", String(200), nullable=False),
            Column("at", DateTime(timezone=True), nullable=False),
            Column("document", Text, nullable=True),
            Column("changes", Text, nullable=False),
            UniqueConstraint("rule_id", "version", name=f"{table_prefix}{noun}_version_uq"),
        )

    # -- schema ------------------------------------------------------------------------------
    def create_tables(self) -> None:
        self.metadata.create_all(self.engine)

    def drop_tables(self) -> None:
        self.metadata.drop_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- reads -------------------------------------------------------------------------------
    def change_counter(self) -> int:
        """Grows with every write anywhere in the store (cheap: max of a primary key)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(func.coalesce(func.max(self.versions.c.seq), 0))).scalar_one()
            )

    def is_empty(self) -> bool:
        """True when nothing was ever written (not even a rule later deleted)."""
        return self.change_counter() == 0

    def list(self) -> list[StoredRule[D]]:
        """All live rules, by id."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.rules).where(self.rules.c.deleted.is_(False)).order_by(self.rules.c.id)
            ).all()
        return [self._stored(r) for r in rows]

    def get(self, rule_id: str) -> StoredRule[D]:
        with self.engine.connect() as conn:
            row = self._row(conn, rule_id)
        if row is None or row.deleted:
            raise RuleNotFound(rule_id, self.noun)
        return self._stored(row)

    def history(self, rule_id: str) -> builtins.list[RuleVersion]:  # `list` is a method here
        """Every version of a rule, newest first (also for deleted rules)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.versions)
                .where(self.versions.c.rule_id == rule_id)
                .order_by(self.versions.c.version.desc())
            ).all()
        if not rows:
            raise RuleNotFound(rule_id, self.noun)
        return [
            RuleVersion(
                rule_id=r.rule_id,
                version=r.version,
                action=r.action,
                author=r.author,
                at=_aware(r.at),
                document=json.loads(r.document) if r.document else None,
                changes=json.loads(r.changes),
            )
            for r in rows
        ]

    # -- writes ------------------------------------------------------------------------------
    def create(self, rule: D, author: str, action: Action = "create") -> StoredRule[D]:
        """Add a new rule (or revive a deleted id). ``RuleConflict`` if the id is live."""
        try:
            with self._write_tx() as conn:
                row = self._row(conn, rule.id, for_update=True)
                if row is not None and not row.deleted:
                    raise RuleConflict(
                        f"{self.noun} {rule.id!r} already exists (version {row.version})",
                        self._stored(row),
                    )
                return self._write(conn, rule, row, author, action)
        except IntegrityError:
            current = self._maybe_get(rule.id)
            raise RuleConflict(
                f"{self.noun} {rule.id!r} was created concurrently", current
            ) from None

    def update(
        self, rule: D, base_version: int, author: str, action: Action = "update"
    ) -> StoredRule[D]:
        """Replace a rule's document; ``RuleConflict`` unless ``base_version`` is current."""
        try:
            with self._write_tx() as conn:
                row = self._live_at(conn, rule.id, base_version)
                return self._write(conn, rule, row, author, action)
        except IntegrityError:
            raise self._conflict(rule.id, base_version) from None

    def set_enabled(
        self, rule_id: str, enabled: bool, author: str, base_version: int | None = None
    ) -> StoredRule[D]:
        """Enable or disable (without a base version the current one is used: flipping a switch
        twice is harmless)."""
        stored = self.get(rule_id)
        if base_version is None:
            if stored.rule.enabled == enabled:
                return stored
            base_version = stored.version
        rule = stored.rule.model_copy(update={"enabled": enabled})
        return self.update(rule, base_version, author, "enable" if enabled else "disable")

    def delete(self, rule_id: str, base_version: int, author: str) -> int:
        """Delete (a new version without a document); returns that version number."""
        try:
            with self._write_tx() as conn:
                row = self._live_at(conn, rule_id, base_version)
                version = row.version + 1
                now = _now()
                res = conn.execute(
                    update(self.rules)
                    .where(self.rules.c.id == rule_id, self.rules.c.version == row.version)
                    .values(version=version, deleted=True, updated_at=now, updated_by=author)
                )
                if res.rowcount != 1:
                    raise self._conflict(rule_id, base_version)
                conn.execute(
                    insert(self.versions).values(
                        rule_id=rule_id,
                        version=version,
                        action="delete",
                        author=author,
                        at=now,
                        document=None,
                        changes=json.dumps(["deleted"]),
                    )
                )
                return version
        except IntegrityError:
            raise self._conflict(rule_id, base_version) from None

    def rollback(
        self, rule_id: str, to_version: int, base_version: int, author: str
    ) -> StoredRule[D]:
        """Make an old version current again, as a new version (history is never rewritten)."""
        old = next((v for v in self.history(rule_id) if v.version == to_version), None)
        if old is None:
            raise RuleNotFound(f"{rule_id} version {to_version}", self.noun)
        if old.document is None:
            raise ValueError(
                f"version {to_version} of {rule_id!r} is a deletion; pick a version with a {self.noun}"
            )
        rule = self.parse(old.document)
        try:
            with self._write_tx() as conn:
                row = self._row(conn, rule_id, for_update=True)
                if row is None or row.version != base_version:
                    raise self._conflict(rule_id, base_version)
                return self._write(conn, rule, row, author, "rollback", allow_deleted=True)
        except IntegrityError:
            raise self._conflict(rule_id, base_version) from None

    def import_rules(
        self,
        rules: Sequence[D],
        author: str,
        mode: Literal["merge", "replace"] = "merge",
        action: Action = "import",
        base_versions: dict[str, int] | None = None,
    ) -> ImportResult:
        """Write validated rules in one transaction: all of them or none. ``replace`` also
        deletes live rules that are not in ``rules``. Unchanged rules get no new version.
        ``base_versions`` (id -> version the file was exported at) are checked like If-Match:
        any rule stored at another version raises ``ImportConflict`` and nothing is written."""
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        deleted: list[str] = []
        ids = {r.id for r in rules}
        if len(ids) != len(rules):
            raise ValueError("duplicate rule ids in the import")
        with self._write_tx() as conn:
            stale: list[tuple[str, int, int | None]] = []
            for rule_id, base in (base_versions or {}).items():
                row = self._row(conn, rule_id, for_update=True)
                if row is None or row.version != base:
                    stale.append(
                        (rule_id, base, None if row is None or row.deleted else row.version)
                    )
            if stale:
                raise ImportConflict(stale)
            for rule in rules:
                row = self._row(conn, rule.id, for_update=True)
                if row is not None and not row.deleted:
                    if json.loads(row.document) == rule.to_document():
                        unchanged.append(rule.id)
                        continue
                    updated.append(rule.id)
                else:
                    created.append(rule.id)
                self._write(conn, rule, row, author, action, allow_deleted=True)
            if mode == "replace":
                live = conn.execute(
                    select(self.rules.c.id, self.rules.c.version).where(
                        self.rules.c.deleted.is_(False)
                    )
                ).all()
                now = _now()
                for rid, version in live:
                    if rid in ids:
                        continue
                    conn.execute(
                        update(self.rules)
                        .where(self.rules.c.id == rid)
                        .values(
                            version=version + 1, deleted=True, updated_at=now, updated_by=author
                        )
                    )
                    conn.execute(
                        insert(self.versions).values(
                            rule_id=rid,
                            version=version + 1,
                            action="delete",
                            author=author,
                            at=now,
                            document=None,
                            changes=json.dumps(["deleted"]),
                        )
                    )
                    deleted.append(rid)
        return ImportResult(created, updated, unchanged, deleted)

    def seed(self, rules: Sequence[D], author: str = "system") -> bool:
        """Load ``rules`` into a store that was never written to; False if it was (or another
        process seeded it first)."""
        if not self.is_empty():
            return False
        try:
            self.import_rules(rules, author, action="seed")
        except IntegrityError:
            return False
        return True

    # -- internals ---------------------------------------------------------------------------
    @contextmanager
    def _write_tx(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(rules_write=True)
            with conn.begin():
                yield conn

    def _row(self, conn: Connection, rule_id: str, for_update: bool = False) -> Any:
        stmt = select(self.rules).where(self.rules.c.id == rule_id)
        if for_update and self.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()

    def _live_at(self, conn: Connection, rule_id: str, base_version: int) -> Any:
        row = self._row(conn, rule_id, for_update=True)
        if row is None or row.deleted:
            raise RuleNotFound(rule_id, self.noun)
        if row.version != base_version:
            raise RuleConflict(
                f"{self.noun} {rule_id!r} was changed by {row.updated_by} at {_aware(row.updated_at):%Y-%m-%d %H:%M:%S} UTC "
                f"(now version {row.version}); your edit was based on version {base_version}. "
                "Reload it and apply your change again.",
                self._stored(row),
            )
        return row

    def _write(
        self,
        conn: Connection,
        rule: D,
        row: Any,
        author: str,
        action: str,
        allow_deleted: bool = False,
    ) -> StoredRule[D]:
        doc = rule.to_document()
        text = json.dumps(doc, sort_keys=True)
        now = _now()
        if row is None:
            version = 1
            conn.execute(
                insert(self.rules).values(
                    id=rule.id,
                    version=version,
                    document=text,
                    enabled=rule.enabled,
                    deleted=False,
                    updated_at=now,
                    updated_by=author,
                )
            )
            old_doc = None
        else:
            version = row.version + 1
            res = conn.execute(
                update(self.rules)
                .where(self.rules.c.id == rule.id, self.rules.c.version == row.version)
                .values(
                    version=version,
                    document=text,
                    enabled=rule.enabled,
                    deleted=False,
                    updated_at=now,
                    updated_by=author,
                )
            )
            if res.rowcount != 1:
                raise self._conflict(rule.id, row.version)
            old_doc = None if row.deleted else json.loads(row.document)
        conn.execute(
            insert(self.versions).values(
                rule_id=rule.id,
                version=version,
                action=action,
                author=author,
                at=now,
                document=text,
                changes=json.dumps(
                    changed_fields(old_doc, doc)
                    if old_doc
                    else ["restored" if row is not None else "created"]
                ),
            )
        )
        return StoredRule(rule, version, now, author)

    def _stored(self, row: Any) -> StoredRule[D]:
        return StoredRule(
            self.parse(json.loads(row.document)),
            row.version,
            _aware(row.updated_at),
            row.updated_by,
        )

    def _maybe_get(self, rule_id: str) -> StoredRule[D] | None:
        try:
            return self.get(rule_id)
        except RuleNotFound:
            return None

    def _conflict(self, rule_id: str, base_version: int) -> RuleConflict:
        current = self._maybe_get(rule_id)
        now = current.version if current else "deleted"
        return RuleConflict(
            f"{self.noun} {rule_id!r} changed meanwhile (now version {now}); your edit was based on "
            f"version {base_version}. Reload it and apply your change again.",
            current,
        )


class ControlStore(RuleStore[Control]):
    """Answer controls, versioned and audited exactly like rules (tables ``<prefix>controls``
    and ``<prefix>control_versions``)."""

    def __init__(self, url: str, table_prefix: str = "recsys_") -> None:
        super().__init__(url, table_prefix, noun="control", parse=parse_control)


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        if path and path != ":memory:":  # never open it read-only (see the guard's doc)
            guard_sqlite_writable(engine, Path(path))

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # WAL: readers never block the writer
            dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:  # writers take the lock up front: no upgrade deadlock
            write = conn.get_execution_options().get("rules_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)
