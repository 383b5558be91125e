"""The experiment store: versions, audit trail, optimistic locking, lifecycle, memory budget;
on SQLite and real PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from feature_store.experiment_store import (
    ExperimentConflict,
    ExperimentRefused,
    ExperimentStore,
    check_memory_budget,
)
from recsys.experiment import Experiment, Variant


def _exp(name: str = "ab", placements=("checkout",), model_b: str | None = None) -> Experiment:  # noqa: ANN001
    return Experiment(
        name=name,
        placements=list(placements),
        variants=[
            Variant(name="control", share=0.5),
            Variant(name="treatment", share=0.5, model=model_b),
        ],
    )


def _lifecycle(store: ExperimentStore) -> None:
    v1 = store.create(_exp(), "ana")
    assert v1.version == 1 and v1.experiment.status == "draft"
    with pytest.raises(ExperimentConflict, match="already exists"):
        store.create(_exp(), "bob")
    edited = _exp().model_copy(update={"description": "checkout test"})
    v2 = store.update(edited, 1, "ana")
    with pytest.raises(ExperimentConflict, match="based on version 1"):
        store.update(_exp().model_copy(update={"description": "stale"}), 1, "bob")
    assert store.get("ab").experiment.description == "checkout test"
    started = store.start("ab", "ana", base_version=v2.version)
    assert started.experiment.status == "running" and started.experiment.started_at is not None
    with pytest.raises(ExperimentConflict, match="only drafts can be edited"):
        store.update(_exp(), started.version, "ana")
    store.create(_exp("other"), "ana")
    with pytest.raises(ExperimentConflict, match="one experiment per placement"):
        store.start("other", "ana")
    assert [e.name for e in store.running()] == ["ab"]
    stopped = store.stop("ab", "ana")
    assert stopped.experiment.status == "stopped" and stopped.experiment.stopped_at
    with pytest.raises(ExperimentConflict, match="only a draft can start"):
        store.start("ab", "ana")
    history = store.history("ab")
    assert [(h.version, h.action, h.author) for h in history] == [
        (4, "stop", "ana"),
        (3, "start", "ana"),
        (2, "update", "ana"),
        (1, "create", "ana"),
    ]
    assert history[2].document["description"] == "checkout test"
    assert store.change_counter() == 5


def test_sqlite_lifecycle(tmp_path) -> None:  # noqa: ANN001
    _lifecycle(ExperimentStore(f"sqlite:///{tmp_path / 'x.db'}"))


@pytest.mark.postgres
def test_postgres_lifecycle(postgres_url: str) -> None:
    store = ExperimentStore(postgres_url, table_prefix=f"t{uuid.uuid4().hex[:8]}_")
    try:
        _lifecycle(store)
    finally:
        store.drop_tables()
        store.dispose()


def test_memory_budget_refuses_with_a_clear_message(tmp_path) -> None:  # noqa: ANN001
    dirs = {None: tmp_path / "champion", "models:/m/2": tmp_path / "v2"}
    for d in dirs.values():
        d.mkdir()
        (d / "weights.npz").write_bytes(b"x" * 3 * 2**20)  # 3 MB each
    exp = _exp(model_b="models:/m/2")
    assert check_memory_budget([exp], lambda uri: dirs[uri], budget_mb=7) == pytest.approx(6.0)
    with pytest.raises(ExperimentRefused, match=r"need 6.0 MB, over the memory budget of 5 MB"):
        check_memory_budget([exp], lambda uri: dirs[uri], budget_mb=5)
    same = _exp(model_b=None)  # both variants on the champion: one model in memory
    assert check_memory_budget([same], lambda uri: dirs[uri], budget_mb=5) == pytest.approx(3.0)

    store = ExperimentStore(f"sqlite:///{tmp_path / 'x.db'}")
    store.create(exp, "ana")
    with pytest.raises(ExperimentRefused):
        store.start(
            "ab",
            "ana",
            check=lambda e, others: check_memory_budget([e, *others], lambda uri: dirs[uri], 5),
        )
    assert store.get("ab").experiment.status == "draft"  # refused: nothing changed
    missing = _exp("missing", model_b="models:/nope/1")
    with pytest.raises(ExperimentRefused, match="cannot be loaded"):
        check_memory_budget(
            [missing], lambda uri: dirs[uri] if uri is None else Path(uri["x"]), 100
        )
