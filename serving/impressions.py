"""Every answer identifiable: the ``recommendation_id``, slot positions, and the recorder that
writes the impression log off the request path.

The request thread only builds a small ``Impression`` and puts it on a bounded in-memory queue
(microseconds); a daemon thread drains the queue into ``ImpressionLog.append`` in batches of up
to ``impression_batch_size`` or every ``impression_flush_seconds``. ``close()`` (the app's
lifespan shutdown, i.e. SIGTERM / Ctrl-C) drains everything still queued.

What a ``kill -9`` can lose: the impressions queued but not yet committed, i.e. at most the
last ``impression_flush_seconds`` (default 1 s) of answers of the killed process, plus a batch
whose commit was in flight. Events naming those ids are still accepted and counted as
unattributed. A full queue (database down for long) drops new impressions and counts them in
``recsys_impressions_dropped``; it never slows or fails an answer.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from feature_store.attribution import EventContext
from feature_store.impression_log import Impression, ImpressionLog, ShownItem
from recsys.recommendation import Recommendation
from serving.model_holder import LoadedModel
from serving.schemas import EventIn, RecommendationRequestIn, RecommendationResponse

log = logging.getLogger(__name__)


def new_recommendation_id() -> str:
    """Random, unguessable, 32 hex characters (uuid4)."""
    return uuid.uuid4().hex


def identify(response: RecommendationResponse, *, experiment: str | None, variant: str) -> None:
    """Give the answer its id, variant and each item/accessory its slot and 1-based position."""
    response.recommendation_id = new_recommendation_id()
    response.experiment = experiment
    response.variant = variant
    for i, item in enumerate(response.items, start=1):
        item.slot, item.position = "items", i
    for i, acc in enumerate(response.accessories, start=1):
        acc.slot, acc.position = "accessories", i


def impression_of(
    response: RecommendationResponse,
    *,
    placement: str,
    user_id: str | None,
    session_id: str | None,
    rules_version: str | None,
    rec: Recommendation | None = None,
) -> Impression:
    """The impression of an identified answer. With the pipeline's ``rec`` (the answer before
    serialisation) each accessory line records the rules that suggested it and each item the
    controls that pinned, boosted or buried it: what a rule's or control's effect is counted
    from. ``response`` lists ``rec``'s items and accessories in the same order."""
    acted: dict[str, list[str]] = {}
    rule_ids: list[tuple[str, ...]] = []
    if rec is not None:
        for sku, control_id, _action in rec.controls_applied:
            ids = acted.setdefault(sku, [])
            if control_id not in ids:
                ids.append(control_id)
        rule_ids = [a.rule_ids or (a.rule_id,) for a in rec.accessories]
    shown = tuple(
        ShownItem(i.sku, "items", i.position, control_ids=tuple(acted.get(i.sku, ())))
        for i in response.items
    ) + tuple(
        ShownItem(
            a.sku,
            "accessories",
            a.position,
            rule_ids=rule_ids[k] if k < len(rule_ids) else ((a.rule_id,) if a.rule_id else ()),
        )
        for k, a in enumerate(response.accessories)
    )
    return Impression(
        recommendation_id=response.recommendation_id,
        ts=datetime.now(UTC),
        placement=placement,
        user_id=user_id,
        session_id=session_id,
        experiment=response.experiment,
        variant=response.variant,
        model_version=response.model_version,
        rules_version=rules_version,
        items=shown,
        controls=tuple(sorted({cid for _, cid, _ in rec.controls_applied})) if rec else (),
    )


class ImpressionRecorder:
    """Batches impressions into the log from a background thread (see module doc)."""

    def __init__(
        self,
        log_: ImpressionLog,
        *,
        flush_seconds: float = 1.0,
        batch_size: int = 500,
        max_queue: int = 100_000,
        on_drop=None,
        on_written=None,  # noqa: ANN001
    ) -> None:
        self.log = log_
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self._queue: queue.Queue[Impression] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_drop = on_drop
        self._on_written = on_written
        self.written = 0
        self.dropped = 0
        self.failed_batches = 0
        self._retry: list[Impression] = []
        self._flush_lock = threading.Lock()

    def start(self) -> ImpressionRecorder:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="impression-log", daemon=True)
            self._thread.start()
        return self

    def record(self, impression: Impression) -> None:
        """Queue one impression; never blocks, never raises."""
        try:
            self._queue.put_nowait(impression)
        except queue.Full:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()

    def pending(self) -> int:
        return self._queue.qsize()

    def _take(self) -> list[Impression]:
        batch: list[Impression] = []
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Impression]) -> bool:
        try:
            self.log.append(batch)
        except Exception as exc:  # noqa: BLE001 - keep the batch, retry on the next round
            self.failed_batches += 1
            log.warning("impression batch of %d not written, will retry: %s", len(batch), exc)
            return False
        self.written += len(batch)
        if self._on_written is not None:
            self._on_written(len(batch))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> None:
        """Write everything queued now, in batches (a failed batch is kept for the next try)."""
        with self._flush_lock:
            while True:
                batch, self._retry = self._retry or self._take(), []
                if not batch:
                    return
                if not self._write(batch):
                    self._retry = batch
                    return

    def close(self) -> None:
        """Stop the thread and drain the queue: nothing recorded before is lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.flush()
        self.log.dispose()


class Impressions:
    """What the recommend route calls once per answer: identify it, then queue its impression
    (when the log is on). ``rules_version`` reads the version of the rules engine in use."""

    def __init__(self, recorder: ImpressionRecorder | None, rules_version=None) -> None:  # noqa: ANN001
        self.recorder = recorder
        self._rules_version = rules_version

    def identify(
        self,
        response: RecommendationResponse,
        body: RecommendationRequestIn,
        *,
        experiment: str | None = None,
        variant: str = "default",
        rec: Recommendation | None = None,
    ) -> None:
        identify(response, experiment=experiment, variant=variant)
        if self.recorder is None:
            return
        rules_version = self._rules_version() if self._rules_version is not None else None
        self.recorder.record(
            impression_of(
                response,
                placement=body.page,
                user_id=body.user_id,
                session_id=body.session_id,
                rules_version=rules_version,
                rec=rec,
            )
        )

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()


def rules_version_of(runtime: object | None):  # noqa: ANN201
    """A reader of the compiled rules' store change number (what the impression records)."""

    def read() -> str | None:
        key = getattr(runtime, "_compiled_key", None)
        return str(key[0]) if key else None

    return read


def event_context(events: Iterable[EventIn], model: LoadedModel | None) -> list[EventContext]:
    """The attribution fields of incoming events: the named answer and position, and the unit
    price of purchases (the event's, else the served catalog's)."""
    out = []
    for e in events:
        price = e.price
        if price is None and e.type == "purchase" and model is not None:
            row = model.row(e.sku)
            price = model.prices[row] if row >= 0 else None
        if e.recommendation_id is not None or e.position is not None or price is not None:
            out.append(EventContext(e.event_id, e.recommendation_id, e.position, price))
    return out
