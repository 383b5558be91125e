"""The one check for every timestamp accepted from outside (events, rule validity windows,
``--since``): timezone-aware (a naive time is taken as UTC, as documented on each field),
inside a sane window, and converted to UTC.

Why a window: ``0001-01-01`` or ``9999-12-31`` are valid ISO 8601 but not times anything here
means, and they break later readers (pandas' ``datetime64[ns]`` covers 1677-2262, so one such
event made every ``recsys events export`` fail). Why UTC: SQLite stores a datetime as text
*without* its offset, so ``12:00+02:00`` came back as ``12:00``; stored as UTC it round-trips
on every backend.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
ALLOWED_RANGE = f"{EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)"


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC (naive means UTC); ``ValueError`` naming the allowed range if it falls
    outside ``EARLIEST`` .. ``LATEST``."""
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+02:00 has no UTC equivalent
        utc = None
    if utc is None or not (EARLIEST <= utc < LATEST):
        raise ValueError(
            f"timestamp {value.isoformat()} is outside the allowed range {ALLOWED_RANGE}"
        )
    return utc
