"""The experiment store: experiment documents, versioned and audited, with optimistic locking
(the approach of the rule store, ``serving/rules/store.py``: a current row per experiment with
a version number, an immutable history row per write, and writes that name the version they
were based on and are applied ``WHERE version = base`` so a stale edit is refused, not lost).

Lifecycle: ``draft`` (editable) -> ``running`` (variants frozen: assignments must not move)
-> ``stopped`` (final). At most one running experiment per placement, so a request is routed
by exactly one experiment. The store lives in the events/rules database (SQLite by default,
PostgreSQL by URL) through ``feature_store.event_log.make_engine``.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from feature_store.event_log import make_engine
from recsys.experiment import Experiment


class ExperimentNotFound(KeyError):
    def __str__(self) -> str:
        return f"no experiment {self.args[0]!r}"


class ExperimentConflict(Exception):
    """Stale base version, a taken name, or a state change that is not allowed now."""


class ExperimentRefused(ValueError):
    """A start that would break a limit (the message says which and what to do)."""


@dataclass(frozen=True)
class StoredExperiment:
    experiment: Experiment
    version: int
    updated_at: datetime
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.experiment.to_document(),
            "version": self.version,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class ExperimentVersion:
    name: str
    version: int
    action: str
    author: str
    at: datetime
    document: dict[str, Any]


def _aware(v: datetime) -> datetime:
    return v if v.tzinfo else v.replace(tzinfo=UTC)


class ExperimentStore:
    def __init__(self, url: str, table_prefix: str = "recsys_") -> None:
        self.engine = make_engine(url)
        self.metadata = sa.MetaData()
        self.current = sa.Table(
            f"{table_prefix}experiments",
            self.metadata,
            sa.Column("name", sa.String(80), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("document", sa.Text, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("updated_by", sa.String(200), nullable=False),
        )
        self.versions = sa.Table(
            f"{table_prefix}experiment_versions",
            self.metadata,
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(80), nullable=False, index=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("action", sa.String(16), nullable=False),
            sa.Column("author", sa.String(200), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("document", sa.Text, nullable=False),
            sa.UniqueConstraint("name", "version", name=f"{table_prefix}experiment_version_uq"),
        )
        self._created = False
        with contextlib.suppress(sa.exc.OperationalError):  # database down: retried on first use
            self._ensure_tables()

    def _ensure_tables(self) -> None:
        if not self._created:
            self.metadata.create_all(self.engine)
            self._created = True

    # -- reads -------------------------------------------------------------------------------
    def change_counter(self) -> int:
        self._ensure_tables()
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(self.versions.c.seq), 0))
                ).scalar_one()
            )

    def list(self) -> list[StoredExperiment]:
        self._ensure_tables()
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.current).order_by(self.current.c.name)).all()
        return [self._stored(r) for r in rows]

    def running(self) -> builtins.list[Experiment]:
        return [s.experiment for s in self.list() if s.experiment.status == "running"]

    def get(self, name: str) -> StoredExperiment:
        self._ensure_tables()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.current).where(self.current.c.name == name)).first()
        if row is None:
            raise ExperimentNotFound(name)
        return self._stored(row)

    def history(self, name: str) -> builtins.list[ExperimentVersion]:
        """Every version, newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(self.versions)
                .where(self.versions.c.name == name)
                .order_by(self.versions.c.version.desc())
            ).all()
        if not rows:
            raise ExperimentNotFound(name)
        return [
            ExperimentVersion(
                r.name, r.version, r.action, r.author, _aware(r.at), json.loads(r.document)
            )
            for r in rows
        ]

    # -- writes ------------------------------------------------------------------------------
    def create(self, experiment: Experiment, author: str) -> StoredExperiment:
        if experiment.status != "draft":
            raise ExperimentConflict("a new experiment starts as a draft; start it afterwards")
        self._ensure_tables()
        try:
            with self.engine.begin() as conn:
                return self._write(conn, experiment, None, author, "create")
        except IntegrityError:
            raise ExperimentConflict(f"experiment {experiment.name!r} already exists") from None

    def update(self, experiment: Experiment, base_version: int, author: str) -> StoredExperiment:
        """Replace a draft (a running or stopped experiment's variants are frozen)."""
        current = self.get(experiment.name)
        if current.experiment.status != "draft":
            raise ExperimentConflict(
                f"experiment {experiment.name!r} is {current.experiment.status}: only drafts can be "
                "edited (assignments must not move); create a new experiment instead"
            )
        doc = experiment.model_copy(
            update={"status": "draft", "started_at": None, "stopped_at": None}
        )
        with self.engine.begin() as conn:
            return self._write(conn, doc, base_version, author, "update")

    def start(
        self,
        name: str,
        author: str,
        *,
        base_version: int | None = None,
        check: Callable[[Experiment, builtins.list[Experiment]], None] | None = None,
    ) -> StoredExperiment:
        """draft -> running. ``check(experiment, running_others)`` may raise
        ``ExperimentRefused`` (the memory budget); another running experiment on one of its
        placements is a conflict."""
        stored = self.get(name)
        exp = stored.experiment
        if exp.status != "draft":
            raise ExperimentConflict(f"experiment {name!r} is {exp.status}; only a draft can start")
        others = [e for e in self.running() if e.name != name]
        clash = [e.name for e in others if set(e.placements) & set(exp.placements)]
        if clash:
            raise ExperimentConflict(
                f"experiment(s) {', '.join(clash)} already run on {', '.join(exp.placements)}; "
                "stop them first (one experiment per placement)"
            )
        if check is not None:
            check(exp, others)
        new = exp.model_copy(update={"status": "running", "started_at": datetime.now(UTC)})
        with self.engine.begin() as conn:
            return self._write(conn, new, base_version or stored.version, author, "start")

    def stop(self, name: str, author: str, *, base_version: int | None = None) -> StoredExperiment:
        stored = self.get(name)
        if stored.experiment.status != "running":
            raise ExperimentConflict(
                f"experiment {name!r} is {stored.experiment.status}, not running"
            )
        new = stored.experiment.model_copy(
            update={"status": "stopped", "stopped_at": datetime.now(UTC)}
        )
        with self.engine.begin() as conn:
            return self._write(conn, new, base_version or stored.version, author, "stop")

    def drop_tables(self) -> None:
        self.metadata.drop_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- internals ---------------------------------------------------------------------------
    def _write(
        self, conn: sa.Connection, exp: Experiment, base: int | None, author: str, action: str
    ) -> StoredExperiment:
        text = json.dumps(exp.to_document(), sort_keys=True)
        now = datetime.now(UTC)
        if base is None:
            version = 1
            conn.execute(
                sa.insert(self.current).values(
                    name=exp.name,
                    version=1,
                    status=exp.status,
                    document=text,
                    updated_at=now,
                    updated_by=author,
                )
            )
        else:
            version = base + 1
            res = conn.execute(
                sa.update(self.current)
                .where(self.current.c.name == exp.name, self.current.c.version == base)
                .values(
                    version=version,
                    status=exp.status,
                    document=text,
                    updated_at=now,
                    updated_by=author,
                )
            )
            if res.rowcount != 1:
                row = conn.execute(
                    sa.select(self.current.c.version, self.current.c.updated_by).where(
                        self.current.c.name == exp.name
                    )
                ).first()
                if row is None:
                    raise ExperimentNotFound(exp.name)
                raise ExperimentConflict(
                    f"experiment {exp.name!r} was changed by {row.updated_by} (now version "
                    f"{row.version}); your change was based on version {base}. Reload and retry."
                )
        conn.execute(
            sa.insert(self.versions).values(
                name=exp.name, version=version, action=action, author=author, at=now, document=text
            )
        )
        return StoredExperiment(exp, version, now, author)

    def _stored(self, row: Any) -> StoredExperiment:
        return StoredExperiment(
            Experiment.model_validate(json.loads(row.document)),
            row.version,
            _aware(row.updated_at),
            row.updated_by,
        )


def bundle_bytes(path: Path) -> int:
    """Size on disk of a model bundle: the estimate of what it takes in memory once loaded."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_memory_budget(
    experiments: list[Experiment], model_dir: Callable[[str | None], Path], budget_mb: float
) -> float:
    """Raise ``ExperimentRefused`` unless the champion plus every distinct variant model of
    ``experiments`` fit in ``budget_mb``; return the MB needed. ``model_dir(uri)`` gives the
    local bundle of a model URI (None = the champion)."""
    uris: list[str | None] = [None]
    for e in experiments:
        uris += [v.model for v in e.variants if v.model is not None]
    sizes: dict[Path, int] = {}
    for uri in dict.fromkeys(uris):
        try:
            d = Path(model_dir(uri)).resolve()
        except Exception as exc:  # noqa: BLE001 - a model that cannot be found cannot start
            if uri is None:
                continue  # no champion yet: nothing loaded for it
            raise ExperimentRefused(f"model {uri!r} cannot be loaded: {exc}") from exc
        sizes.setdefault(d, bundle_bytes(d))
    need = sum(sizes.values()) / 2**20
    if need > budget_mb:
        raise ExperimentRefused(
            f"refused: the champion and the running variants' models need {need:.1f} MB, over the "
            f"memory budget of {budget_mb:g} MB (RECSYS_EXPERIMENT_MEMORY_BUDGET_MB). Stop another "
            "experiment, use fewer distinct models, or raise the budget."
        )
    return need
