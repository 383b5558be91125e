"""``POST /v1/events``: storefront events, idempotent by ``event_id``, durable before 2xx.

A plain ``def`` handler on purpose: the commit waits for the disk (fsync), so it runs in the
thread pool and never blocks the event loop that serves recommendations.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException

from feature_store.event_log import Event, StoreUnavailable
from serving.deps import (
    CurrentModel,
    EventContextDep,
    EventLogDep,
    MetricsDep,
    OnlineStateDep,
    SettingsDep,
)
from serving.errors import limit_error
from serving.impressions import event_context
from serving.schemas import EventAck, EventBatchIn, Problem, RejectedEventOut

log = logging.getLogger(__name__)
router = APIRouter(tags=["events"])


@router.post(
    "/v1/events",
    response_model=EventAck,
    summary="Record a batch of events",
    description="Stored durably before the answer (retry freely: an `event_id` already stored "
    "is counted in `duplicates` and not applied twice). New events update the shopper's online "
    "state (recent items, style affinity) and popularity; `recsys events export` hands them "
    "to the next training. 503 means nothing was stored: retry the same batch.",
    responses={
        503: {
            "model": Problem,
            "description": "The event store is unavailable; nothing was stored.",
        }
    },
)
def post_events(
    body: EventBatchIn,
    log_: EventLogDep,
    online: OnlineStateDep,
    model: CurrentModel,
    metrics: MetricsDep,
    settings: SettingsDep,
    context: EventContextDep,
) -> EventAck:
    if len(body.events) > settings.max_event_batch:
        raise limit_error(
            "events",
            f"too many events: {len(body.events)} > {settings.max_event_batch} "
            "(RECSYS_MAX_EVENT_BATCH); split the batch",
        )
    events = [
        Event(
            event_id=e.event_id,
            type=e.type,
            sku=e.sku,
            ts=e.ts,
            quantity=e.quantity,
            user_id=e.user_id,
            session_id=e.session_id,
            order_id=e.order_id,
        )
        for e in body.events
    ]
    try:
        context.append(event_context(body.events, model))  # before the events: see attribution
        result = log_.append(events)
    except Exception as exc:  # noqa: BLE001 - not stored => not acknowledged
        if isinstance(exc, StoreUnavailable):  # a known fault: its message says it all
            log.warning("events refused: %s", exc)
        else:
            log.exception("event store failed")
        raise HTTPException(
            503,
            f"event store unavailable, nothing stored; retry the batch ({type(exc).__name__})",
            headers={"Retry-After": "1"},
        ) from exc
    metrics.events_accepted.inc(result.accepted)
    metrics.events_duplicate.inc(result.duplicates)
    metrics.events_conflicting.inc(len(result.conflicting))
    unknown: list[str] = []
    if model is not None:
        refused = {r.index for r in result.rejected}
        unknown = sorted(
            {e.sku for i, e in enumerate(events) if i not in refused and model.row(e.sku) < 0}
        )
    # online state (popularity, recent items) only from SKUs of the served catalogue: with no
    # model there is none, and anonymous events naming made-up SKUs must not become "popular"
    known = [e for e in result.inserted if model is not None and model.row(e.sku) >= 0]
    if known:
        try:
            styles = model.item_styles(sorted({e.sku for e in known})) if model else None
            online.apply(known, styles)
        except Exception:  # noqa: BLE001 - stored is what counts; state is derived
            log.exception("online state update failed (events are stored)")
    rejected = [
        RejectedEventOut(index=r.index, field=f"events[{r.index}].{r.field}", message=r.message)
        for r in result.rejected
    ]
    if rejected:
        log.warning("refused %d event(s) of a batch: %s", len(rejected), rejected[0].message)
    return EventAck(
        accepted=result.accepted,
        duplicates=result.duplicates,
        unknown_skus=unknown,
        rejected=rejected,
        conflicting_duplicates=list(result.conflicting[:100]),
    )
