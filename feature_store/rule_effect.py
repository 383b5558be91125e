"""The effect of each merchandiser rule and answer control over a window of time.

A merchandiser asks of every rule "was it worth it?": how often its accessories were shown,
added and bought. The impression log records, with every answer, the rules that suggested each
accessory line and the controls that pinned, boosted or buried each item
(``ImpressionLog.read_sources``); the events are credited to shown lines by the one set of
attribution rules (``feature_store.attribution.attribute``: a named answer, else the same
shopper within ``attribution_window_hours``). This module only counts, per rule or control:

* ``impressions``: lines it placed (or moved) in answers shown in ``[start, end)``;
* ``baskets``: distinct answers it acted on (for a control, hides and unshown boosts included);
* ``added`` / ``bought``: of those lines, the ones with at least one attributed add-to-cart /
  purchase of the shown SKU; ``attached``: either (``attach_rate = attached / impressions``);
* ``revenue``: attributed purchase revenue (unit price x quantity) on those lines.

A line several rules suggested counts fully for each of them (credit is not split), so sums
over rules can exceed the answer's totals. Attribution is by SKU, as everywhere else: buying
another SKU of the suggested category is not credited. Impressions stored before sources were
recorded count for no rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from feature_store.attribution import ATTRIBUTED_TYPES, EventContextLog, attribute
from feature_store.event_log import EventLog
from feature_store.impression_log import ANSWER_SLOT, CONTROL, RULE, ImpressionLog
from recsys.timestamps import to_utc

KINDS = (RULE, CONTROL)


@dataclass(frozen=True)
class SourceEffect:
    """One rule's or control's figures over ``[start, end)`` (see the module doc)."""

    kind: str
    source_id: str
    start: datetime
    end: datetime
    impressions: int
    baskets: int
    added: int
    bought: int
    attached: int
    revenue: float

    @property
    def attach_rate(self) -> float:
        """Share of shown lines followed by an attributed add-to-cart or purchase (0 if none)."""
        return self.attached / self.impressions if self.impressions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"attach_rate": self.attach_rate}


def effects_from(
    lines: pd.DataFrame,
    attributed: pd.DataFrame,
    *,
    kind: str,
    start: datetime,
    end: datetime,
    source_ids: Sequence[str] = (),
) -> dict[str, SourceEffect]:
    """The reduction, on frames: ``lines`` as ``ImpressionLog.read_sources``, ``attributed`` as
    ``attribute`` returns. Every id of ``source_ids`` is in the answer (zeros if it never
    acted), and so is every id found in ``lines``."""
    ids = list(dict.fromkeys([*source_ids, *lines["source_id"].tolist()]))
    zero = {i: SourceEffect(kind, i, start, end, 0, 0, 0, 0, 0, 0.0) for i in ids}
    if lines.empty:
        return zero
    credited = attributed[
        attributed["rule"].notna() & attributed["type"].isin(ATTRIBUTED_TYPES)
    ].copy()
    key = ["recommendation_id", "slot", "position"]
    if len(credited):
        credited["position"] = credited["position"].astype("int64")
        credited["is_cart"] = credited["type"] == "add_to_cart"
        credited["is_buy"] = credited["type"] == "purchase"
        per_line = credited.groupby(key).agg(
            added=("is_cart", "any"), bought=("is_buy", "any"), revenue=("revenue", "sum")
        )
    else:
        per_line = pd.DataFrame(
            {"added": pd.Series(dtype=bool), "bought": pd.Series(dtype=bool), "revenue": 0.0},
            index=pd.MultiIndex.from_tuples([], names=key),
        )
    shown = lines[lines["slot"] != ANSWER_SLOT]
    joined = shown.join(per_line, on=key)
    for flag in ("added", "bought"):  # lines no event was credited to: NaN -> False
        joined[flag] = joined[flag].eq(True)
    joined["revenue"] = joined["revenue"].fillna(0.0).astype(float)
    joined["attached"] = joined["added"] | joined["bought"]
    counts = joined.groupby("source_id").agg(
        impressions=("recommendation_id", "size"),
        added=("added", "sum"),
        bought=("bought", "sum"),
        attached=("attached", "sum"),
        revenue=("revenue", "sum"),
    )
    baskets = lines.groupby("source_id")["recommendation_id"].nunique()
    out = dict(zero)
    for source_id in baskets.index:
        row = counts.loc[source_id] if source_id in counts.index else None
        out[source_id] = SourceEffect(
            kind,
            source_id,
            start,
            end,
            impressions=int(row["impressions"]) if row is not None else 0,
            baskets=int(baskets[source_id]),
            added=int(row["added"]) if row is not None else 0,
            bought=int(row["bought"]) if row is not None else 0,
            attached=int(row["attached"]) if row is not None else 0,
            revenue=round(float(row["revenue"]), 2) if row is not None else 0.0,
        )
    return out


def source_effects(
    impressions: ImpressionLog,
    events: EventLog,
    kind: str,
    *,
    start: datetime,
    end: datetime,
    window_hours: float,
    source_ids: Sequence[str] | None = None,
    prices: dict[str, float] | None = None,
    context: EventContextLog | None = None,
) -> dict[str, SourceEffect]:
    """Every rule's (``kind="rule"``) or control's effect over ``[start, end)``, or only
    ``source_ids``'s (each present, zeros when it never acted). Reads the sources of the
    window, then the impressions and events attribution may need: an event up to
    ``window_hours`` after ``end`` can still be credited to a line shown before ``end``, and a
    later impression of the same SKU may take the credit instead. ``context``: the events'
    attribution fields (default: ``events_context`` next to the events)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise ValueError(f"the window must end after it starts ({start} .. {end})")
    lines = impressions.read_sources(kind, since=start, until=end, source_ids=source_ids)
    if lines.empty:
        return effects_from(
            lines, pd.DataFrame(), kind=kind, start=start, end=end, source_ids=source_ids or ()
        )
    horizon = timedelta(hours=window_hours)
    shown = impressions.read_frame(since=start, until=end + horizon)
    ev = events.read_frame(since=start - horizon, until=end + horizon)
    ctx = (context or EventContextLog(events.engine)).read_frame()
    attributed = attribute(ev, ctx, shown, window_hours=window_hours, prices=prices)
    return effects_from(
        lines, attributed, kind=kind, start=start, end=end, source_ids=source_ids or ()
    )
