"""Online state: what the events since training say about a shopper and about the catalog.

Per shopper (user id, else session id): the most recent distinct SKUs and a style affinity
(event-weighted sum of the items' style distributions, normalised on read). Globally: weighted
popularity counters per SKU. The recommender receives the shopper's part as
``request.user_context`` (``recsys.recommendation.UserContext``); the popularity counters are
the fallback when no model is loaded.

Two implementations with one interface: ``InProcessOnlineState`` (default, one process) and
``RedisOnlineState`` (shared by every API process and machine). Only events stored for the
first time are applied (the event log says which), so retries never double-count.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from feature_store.event_log import EVENT_WEIGHTS, Event
from recsys.recommendation import UserContext

RECENT_ITEMS = 20
USER_TTL_SECONDS = 30 * 24 * 3600

ItemStyles = Mapping[str, Mapping[str, float]]  # sku -> style slug -> weight (sums to 1)


def _normalised(affinity: Mapping[str, float]) -> dict[str, float] | None:
    total = sum(v for v in affinity.values() if v > 0)
    if total <= 0:
        return None
    return {k: v / total for k, v in sorted(affinity.items()) if v > 0}


def shopper_key(user_id: str | None, session_id: str | None) -> str | None:
    """The state key of a request: same rule as ``Event.shopper_key``."""
    if user_id:
        return f"u:{user_id}"
    if session_id:
        return f"s:{session_id}"
    return None


class OnlineState(Protocol):
    def apply(self, events: Sequence[Event], item_styles: ItemStyles | None = None) -> None:
        """Fold newly stored events into the state (in ``ts`` order)."""

    def user_context(self, user_id: str | None, session_id: str | None) -> UserContext | None:
        """The shopper's recent items and style affinity; None when nothing is known."""

    def popular(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` SKUs with the highest weighted event counts, best first."""

    def ping(self) -> None:
        """Raise if the backing store is unreachable."""

    def close(self) -> None: ...


MAX_SHOPPERS = 100_000  # in-process state: ~1 KB each at most (RECENT_ITEMS SKUs + styles)
MAX_POPULAR_SKUS = 200_000


class InProcessOnlineState:
    """Online state in this process's memory (thread-safe; lost on restart, rebuilt from
    events if needed). Bounded: ``max_shoppers`` (LRU) and ``max_popular_skus``."""

    def __init__(
        self,
        recent_items: int = RECENT_ITEMS,
        *,
        max_shoppers: int = MAX_SHOPPERS,
        max_popular_skus: int = MAX_POPULAR_SKUS,
    ) -> None:
        self.recent_items = recent_items
        self.max_shoppers = max_shoppers
        self.max_popular_skus = max_popular_skus
        self._lock = threading.Lock()
        # least recently active shopper first: the one evicted past ``max_shoppers``
        self._recent: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._style: dict[str, dict[str, float]] = defaultdict(dict)
        self._popularity: dict[str, float] = defaultdict(float)

    def apply(self, events: Sequence[Event], item_styles: ItemStyles | None = None) -> None:
        with self._lock:
            for e in sorted(events, key=lambda e: e.ts):
                weight = EVENT_WEIGHTS[e.type]
                self._popularity[e.sku] += weight
                key = e.shopper_key
                if key is None:
                    continue
                recent = self._recent.setdefault(key, OrderedDict())
                self._recent.move_to_end(key)
                recent.pop(e.sku, None)
                recent[e.sku] = None
                while len(recent) > self.recent_items:
                    recent.popitem(last=False)
                for style, w in (item_styles or {}).get(e.sku, {}).items():
                    aff = self._style[key]
                    aff[style] = aff.get(style, 0.0) + weight * float(w)
            self._bound()

    def _bound(self) -> None:
        """Memory stays bounded whatever clients send: the least recently active shoppers are
        forgotten past ``max_shoppers``; past ``max_popular_skus`` the weakest tenth of the
        popularity counters is dropped."""
        while len(self._recent) > self.max_shoppers:
            key, _ = self._recent.popitem(last=False)
            self._style.pop(key, None)
        if len(self._popularity) > self.max_popular_skus:
            keep = sorted(self._popularity.items(), key=lambda kv: -kv[1])
            self._popularity = defaultdict(float, keep[: int(self.max_popular_skus * 0.9)])

    def user_context(self, user_id: str | None, session_id: str | None) -> UserContext | None:
        key = shopper_key(user_id, session_id)
        if key is None:
            return None
        with self._lock:
            recent = tuple(reversed(self._recent.get(key, {})))
            affinity = _normalised(self._style.get(key, {}))
        if not recent and affinity is None:
            return None
        return UserContext(recent_skus=recent, style_affinity=affinity)

    def popular(self, k: int) -> list[tuple[str, float]]:
        with self._lock:
            items = sorted(self._popularity.items(), key=lambda kv: (-kv[1], kv[0]))
        return items[:k]

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


class RedisOnlineState:
    """Online state in Redis, shared by all API processes.

    Keys (under ``prefix``): ``recent:<shopper>`` list (most recent first, trimmed),
    ``style:<shopper>`` hash of style -> weight, ``popular`` sorted set of SKU -> weight.
    Shopper keys expire after ``ttl_seconds`` without events. One pipelined round trip per
    batch and per lookup.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "recsys:",
        recent_items: int = RECENT_ITEMS,
        ttl_seconds: int = USER_TTL_SECONDS,
        timeout_seconds: float = 2.0,
        backoff_seconds: float = 5.0,
    ) -> None:
        import redis  # deferred: only deployments with Redis pay for the import

        self.url = url
        self.prefix = prefix
        self.recent_items = recent_items
        self.ttl_seconds = ttl_seconds
        self.backoff_seconds = backoff_seconds
        self._skip_until = 0.0
        self.client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
        )

    def _guard(self) -> None:
        """After a failure, skip Redis for ``backoff_seconds`` (a frozen Redis must not cost
        every request its timeout); callers already treat online state as optional."""
        if time.monotonic() < self._skip_until:
            raise ConnectionError("online state skipped: Redis failed recently, retrying soon")

    def _failed(self) -> None:
        self._skip_until = time.monotonic() + self.backoff_seconds

    def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401 - redis-py's
        import redis

        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError):
            self._failed()
            raise

    def apply(self, events: Sequence[Event], item_styles: ItemStyles | None = None) -> None:
        if not events:
            return
        self._guard()
        p = self.prefix
        pipe = self.client.pipeline(transaction=False)
        touched: set[str] = set()
        for e in sorted(events, key=lambda e: e.ts):
            weight = EVENT_WEIGHTS[e.type]
            pipe.zincrby(f"{p}popular", weight, e.sku)
            key = e.shopper_key
            if key is None:
                continue
            touched.add(key)
            pipe.lrem(f"{p}recent:{key}", 0, e.sku)
            pipe.lpush(f"{p}recent:{key}", e.sku)
            for style, w in (item_styles or {}).get(e.sku, {}).items():
                pipe.hincrbyfloat(f"{p}style:{key}", style, weight * float(w))
        for key in touched:
            pipe.ltrim(f"{p}recent:{key}", 0, self.recent_items - 1)
            pipe.expire(f"{p}recent:{key}", self.ttl_seconds)
            pipe.expire(f"{p}style:{key}", self.ttl_seconds)
        self._run(pipe.execute)

    def user_context(self, user_id: str | None, session_id: str | None) -> UserContext | None:
        key = shopper_key(user_id, session_id)
        if key is None:
            return None
        self._guard()
        pipe = self.client.pipeline(transaction=False)
        pipe.lrange(f"{self.prefix}recent:{key}", 0, self.recent_items - 1)
        pipe.hgetall(f"{self.prefix}style:{key}")
        recent, style = self._run(pipe.execute)
        affinity = _normalised({k: float(v) for k, v in style.items()})
        if not recent and affinity is None:
            return None
        return UserContext(recent_skus=tuple(recent), style_affinity=affinity)

    def popular(self, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        self._guard()
        # redis-py types the reply loosely; with withscores it is [(member, score), ...]
        rows = cast(
            "list[tuple[str, float]]",
            self._run(self.client.zrevrange, f"{self.prefix}popular", 0, k - 1, withscores=True),
        )
        return [(str(sku), float(score)) for sku, score in rows]

    def ping(self) -> None:
        self.client.ping()

    def clear(self) -> None:
        """Delete every key under the prefix (tests)."""
        keys = list(self.client.scan_iter(f"{self.prefix}*", count=500))
        if keys:
            self.client.delete(*keys)

    def close(self) -> None:
        self.client.close()


def make_online_state(
    redis_url: str | None, *, prefix: str = "recsys:", timeout_seconds: float = 2.0
) -> OnlineState:
    """Redis when a URL is configured (each call bounded by ``timeout_seconds``: serving passes
    its latency budget), else in-process."""
    if redis_url:
        return RedisOnlineState(redis_url, prefix=prefix, timeout_seconds=timeout_seconds)
    return InProcessOnlineState()
