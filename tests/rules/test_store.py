"""The versioned store, on SQLite and on the real PostgreSQL (same tests, same code)."""

from __future__ import annotations

import threading
import uuid

import pytest

from recsys.rules.model import parse_rule
from recsys.rules.rules_file import default_rules
from serving.rules.store import RuleConflict, RuleNotFound, RuleStore, changed_fields


def doc(rid: str = "paint-gloves", **kw) -> dict:
    d = {
        "id": rid,
        "name": rid,
        "trigger": {"categories": ["wall-paint"]},
        "suggest": {"categories": ["protective-gloves"]},
    }
    d.update(kw)
    return d


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = RuleStore(f"sqlite:///{tmp_path}/rules.db")
    else:
        url = request.getfixturevalue("postgres_url")
        s = RuleStore(url, table_prefix=f"t{uuid.uuid4().hex[:10]}_")
    s.create_tables()
    yield s
    if request.param == "postgres":
        s.drop_tables()
    s.dispose()


def test_every_change_is_a_version_with_who_and_what(store) -> None:
    assert store.is_empty()
    v1 = store.create(parse_rule(doc()), "alice")
    assert v1.version == 1 and not store.is_empty()
    v2 = store.update(
        parse_rule(doc(priority=7, suggest={"categories": ["masking-tape"]})), 1, "bob"
    )
    assert v2.version == 2 and store.get("paint-gloves").rule.priority == 7
    hist = store.history("paint-gloves")
    assert [(h.version, h.action, h.author) for h in hist] == [
        (2, "update", "bob"),
        (1, "create", "alice"),
    ]
    assert hist[0].changes == ["priority", "suggest.categories"]
    assert hist[1].document["priority"] == 0  # old versions are kept whole


def test_stale_update_is_refused_and_nothing_is_lost(store) -> None:
    store.create(parse_rule(doc()), "alice")
    store.update(parse_rule(doc(priority=1)), 1, "alice")
    with pytest.raises(RuleConflict) as info:
        store.update(parse_rule(doc(priority=99)), 1, "bob")
    assert info.value.current.version == 2 and info.value.current.rule.priority == 1
    assert "alice" in str(info.value) and "version 1" in str(info.value)
    assert store.get("paint-gloves").rule.priority == 1
    with pytest.raises(RuleConflict):
        store.delete("paint-gloves", 1, "bob")
    with pytest.raises(RuleConflict):
        store.set_enabled("paint-gloves", False, "bob", base_version=1)


def test_create_twice_conflicts_and_missing_is_not_found(store) -> None:
    store.create(parse_rule(doc()), "alice")
    with pytest.raises(RuleConflict):
        store.create(parse_rule(doc()), "bob")
    with pytest.raises(RuleNotFound):
        store.get("nope")
    with pytest.raises(RuleNotFound):
        store.update(parse_rule(doc("nope")), 1, "bob")
    with pytest.raises(RuleNotFound):
        store.history("nope")


def test_delete_then_rollback_restores_as_a_new_version(store) -> None:
    store.create(parse_rule(doc(priority=3)), "alice")
    store.update(parse_rule(doc(priority=4)), 1, "alice")
    assert store.delete("paint-gloves", 2, "bob") == 3
    with pytest.raises(RuleNotFound):
        store.get("paint-gloves")
    assert [s.rule.id for s in store.list()] == []
    restored = store.rollback("paint-gloves", 1, 3, "carol")
    assert restored.version == 4 and restored.rule.priority == 3
    hist = store.history("paint-gloves")
    assert [h.action for h in hist] == ["rollback", "delete", "update", "create"]
    assert hist[0].changes == ["restored"]
    with pytest.raises(ValueError, match="is a deletion"):
        store.rollback("paint-gloves", 3, 4, "carol")


def test_rollback_is_itself_versioned_and_checked(store) -> None:
    store.create(parse_rule(doc(priority=1)), "a")
    store.update(parse_rule(doc(priority=2)), 1, "a")
    with pytest.raises(RuleConflict):
        store.rollback("paint-gloves", 1, 1, "b")  # based on an old version
    r = store.rollback("paint-gloves", 1, 2, "b")
    assert r.version == 3 and r.rule.priority == 1
    assert store.history("paint-gloves")[0].changes == ["priority"]


def test_enable_disable(store) -> None:
    store.create(parse_rule(doc()), "a")
    off = store.set_enabled("paint-gloves", False, "b")
    assert off.version == 2 and not off.rule.enabled
    assert store.set_enabled("paint-gloves", False, "b").version == 2  # no-op, no new version
    assert store.set_enabled("paint-gloves", True, "b", base_version=2).version == 3


def test_import_is_all_or_nothing_and_replace_deletes(store) -> None:
    store.create(parse_rule(doc("keep")), "a")
    store.create(parse_rule(doc("drop")), "a")
    rules = [parse_rule(doc("keep")), parse_rule(doc("new-one", priority=5))]
    res = store.import_rules(rules, "importer", mode="replace")
    assert res.created == ["new-one"] and res.unchanged == ["keep"] and res.deleted == ["drop"]
    assert sorted(s.rule.id for s in store.list()) == ["keep", "new-one"]
    before = store.change_counter()
    with pytest.raises(ValueError, match="duplicate"):
        store.import_rules([parse_rule(doc("x")), parse_rule(doc("x"))], "importer")
    assert store.change_counter() == before and "x" not in {s.rule.id for s in store.list()}


def test_seed_only_into_a_never_written_store(store) -> None:
    assert store.seed(default_rules())
    n = len(store.list())
    assert n == len(default_rules())
    first = store.list()[0]
    store.delete(first.rule.id, first.version, "a")
    assert not store.seed(default_rules())  # deleting rules must not bring the defaults back
    assert len(store.list()) == n - 1


def test_change_counter_grows_with_every_write(store) -> None:
    c0 = store.change_counter()
    store.create(parse_rule(doc()), "a")
    c1 = store.change_counter()
    store.set_enabled("paint-gloves", False, "a")
    assert c0 < c1 < store.change_counter()


def test_concurrent_edits_of_one_version_exactly_one_wins(store) -> None:
    store.create(parse_rule(doc()), "a")
    results: list[str] = []
    barrier = threading.Barrier(6)

    def edit(i: int) -> None:
        barrier.wait()
        try:
            store.update(parse_rule(doc(priority=i)), 1, f"user{i}")
            results.append("ok")
        except RuleConflict:
            results.append("conflict")

    threads = [threading.Thread(target=edit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["ok"]
    hist = store.history("paint-gloves")
    assert [h.version for h in hist] == [2, 1]


def test_changed_fields() -> None:
    assert changed_fields({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 0}) == ["b.c", "d"]
