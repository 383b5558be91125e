"""Online state: recent items, style affinity and popularity, in-process and in Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from feature_store.event_log import Event
from feature_store.online_state import InProcessOnlineState, RedisOnlineState

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STYLES = {"A": {"loft": 1.0}, "B": {"loft": 0.5, "boho": 0.5}, "C": {"boho": 1.0}}


def _ev(i: int, type_: str, sku: str, user: str | None = "u1", session: str | None = None) -> Event:
    return Event(f"e{i}", type_, sku, T0 + timedelta(seconds=i), 1, user, session)


def _check_state(state) -> None:  # noqa: ANN001
    assert state.user_context("u1", None) is None
    assert state.user_context(None, None) is None
    state.apply(
        [
            _ev(2, "view", "B"),
            _ev(1, "purchase", "A"),  # out of order in the batch: applied by ts
            _ev(3, "view", "A"),
            _ev(4, "add_to_cart", "C", user=None, session="s9"),
            _ev(5, "view", "ZZZ"),  # unknown style: still a recent item
        ],
        STYLES,
    )
    ctx = state.user_context("u1", "ignored-session")
    assert ctx.recent_skus == ("ZZZ", "A", "B")  # most recent first, distinct
    # loft: purchase A (5) + view B (0.5) + view A (1) = 6.5; boho: view B (0.5)
    assert ctx.style_affinity == pytest.approx({"boho": 0.5 / 7.0, "loft": 6.5 / 7.0})
    assert state.user_context(None, "s9").recent_skus == ("C",)
    assert state.user_context(None, "s9").style_affinity == {"boho": 1.0}
    assert [sku for sku, _ in state.popular(2)] == ["A", "C"]  # 6, 3
    assert dict(state.popular(10))["B"] == 1.0
    many = [_ev(100 + i, "view", f"X{i}") for i in range(30)]
    state.apply(many, STYLES)
    recent = state.user_context("u1", None).recent_skus
    assert len(recent) == 20 and recent[0] == "X29"
    state.ping()


def test_in_process_state() -> None:
    _check_state(InProcessOnlineState())


@pytest.mark.redis
def test_redis_state_is_shared_between_clients(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    writer = RedisOnlineState(redis_url, prefix=prefix)
    reader = RedisOnlineState(redis_url, prefix=prefix)  # another API process
    try:
        _check_state(writer)
        assert reader.user_context("u1", None) == writer.user_context("u1", None)
        assert reader.client.ttl(f"{prefix}recent:u:u1") > 0
    finally:
        writer.clear()
        writer.close()
        reader.close()
