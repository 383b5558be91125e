"""From a validated request to a response: call the pipeline, fall back when it cannot answer.

The route validates and maps; the ``Recommender`` ranks; this module holds the serving policy
in between: the latency budget (passed as ``deadline``), online state as ``user_context``,
fallbacks (pipeline error => the model's popular items; no model => popularity counted from
events), degraded flags and the metrics that count them. It never raises for a model problem.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from fastapi import Response
from pydantic import BaseModel

from feature_store.online_state import OnlineState
from recsys.controls import CompiledControls
from recsys.recommendation import (
    DEFAULT_ACCESSORY_SLOTS,
    NO_STYLE,
    AccessoryRules,
    BasketLine,
    Filters,
    Recommendation,
    RecommendationRequest,
    RecommendedItem,
    StyleReading,
)
from serving.metrics import ServingMetrics
from serving.model_holder import LoadedModel
from serving.schemas import (
    AccessoryOut,
    ItemOut,
    RecommendationRequestIn,
    RecommendationResponse,
    StyleOut,
)

log = logging.getLogger(__name__)


def to_request(
    body: RecommendationRequestIn,
    online: OnlineState | None,
    accessory_slots: int = DEFAULT_ACCESSORY_SLOTS,
    controls: CompiledControls | None = None,
) -> RecommendationRequest:
    """The pipeline's request record, with what online state knows about the shopper, the
    deployment's accessory slot count and the merchandisers' answer controls."""
    context = None
    if online is not None and (body.user_id or body.session_id):
        try:
            context = online.user_context(body.user_id, body.session_id)
        except Exception as exc:  # noqa: BLE001 - personalisation is optional
            log.warning("online state unavailable: %s", exc)
    f = body.filters
    return RecommendationRequest(
        basket=tuple(BasketLine(b.sku, b.quantity) for b in body.basket),
        user_id=body.user_id,
        session_id=body.session_id,
        page=body.page,
        k=body.k,
        exclude_skus=tuple(body.exclude_skus),
        filters=Filters(
            in_stock=f.in_stock,
            max_price=f.max_price,
            categories=tuple(f.categories) if f.categories is not None else None,
        ),
        user_context=context,
        accessory_slots=accessory_slots,
        controls=controls,
    )


# The response models below are built with ``model_construct``: every value is already of the
# declared type (the pipeline's own records), so validating them again per item only costs CPU;
# ``json_response`` serialises the result once (a returned model would be validated and encoded
# again by FastAPI). The OpenAPI schema still comes from the routes' ``response_model``.


def style_out(reading: StyleReading) -> StyleOut:
    return StyleOut.model_validate(reading.to_dict())


def items_out(model: LoadedModel | None, items: Iterable[RecommendedItem]) -> list[ItemOut]:
    out: list[ItemOut] = []
    for it in items:
        row = model.row(it.sku) if model is not None else -1
        known = row >= 0
        out.append(
            ItemOut.model_construct(
                sku=it.sku,
                title=model.titles[row] if known and model is not None else None,
                category=model.categories[row] if known and model is not None else None,
                price=model.prices[row] if known and model is not None else None,
                score=float(it.score),
                sources=list(it.sources),
                reason=it.reason,
            )
        )
    return out


def response_from(
    model: LoadedModel | None, rec: Recommendation, request_id: str
) -> RecommendationResponse:
    accessories = []
    for a in rec.accessories:
        row = model.row(a.sku) if model is not None else -1
        accessories.append(
            AccessoryOut.model_construct(
                sku=a.sku,
                title=model.titles[row] if row >= 0 and model is not None else None,
                category=model.categories[row] if row >= 0 and model is not None else None,
                rule_id=a.rule_id,
                reason=a.reason,
            )
        )
    return RecommendationResponse.model_construct(
        items=items_out(model, rec.items),
        accessories=accessories,
        style=style_out(rec.style),
        unknown_skus=list(rec.unknown_skus),
        model_version=model.version if model is not None else None,
        degraded=rec.degraded,
        degraded_reason=rec.degraded_reason,
        timings_ms={k: round(float(v), 3) for k, v in rec.timings_ms.items()},
        request_id=request_id,
    )


def json_response(response: BaseModel) -> Response:
    """The response serialised once, as FastAPI would (compact JSON, aliases, no re-validation)."""
    return Response(response.model_dump_json(by_alias=True), media_type="application/json")


def online_popular(
    online: OnlineState | None, request: RecommendationRequest
) -> tuple[RecommendedItem, ...]:
    """Popularity counted from accepted events: the answer when no model is loaded."""
    if online is None:
        return ()
    skip = {b.sku for b in request.basket} | set(request.exclude_skus)
    try:
        ranked = online.popular(request.k + len(skip))
    except Exception as exc:  # noqa: BLE001
        log.warning("online popularity unavailable: %s", exc)
        return ()
    return tuple(
        RecommendedItem(sku, score, ("popular-events",), "popular with shoppers right now")
        for sku, score in ranked
        if sku not in skip
    )[: request.k]


def recommend(
    model: LoadedModel | None,
    request: RecommendationRequest,
    *,
    rules: AccessoryRules | None,
    deadline: float,
    online: OnlineState | None,
    metrics: ServingMetrics,
) -> Recommendation:
    """The pipeline's answer, or the best fallback; never raises for a model problem."""
    if model is None:
        metrics.fallbacks.labels("no_model").inc()
        metrics.degraded.labels("no_model").inc()
        return Recommendation(
            items=online_popular(online, request),
            style=NO_STYLE,
            degraded=True,
            degraded_reason="no model loaded: popular items from recent events",
        )
    use_rules = rules if request.page in ("cart", "checkout") else None
    t0 = time.perf_counter()
    try:
        rec = model.recommender.recommend(request, rules=use_rules, deadline=deadline)
    except Exception as exc:  # noqa: BLE001 - answer from popularity instead of failing
        log.exception("recommender failed; answering from popularity")
        metrics.fallbacks.labels("pipeline_error").inc()
        metrics.degraded.labels("pipeline_error").inc()
        return _popular_fallback(model, request, online, f"pipeline error: {type(exc).__name__}")
    for stage, ms in rec.timings_ms.items():
        metrics.stages.labels(stage).observe(float(ms) / 1000.0)
    metrics.stages.labels("total").observe(time.perf_counter() - t0)
    if rec.degraded:
        reason = (rec.degraded_reason or "degraded").split(":")[0][:40]
        metrics.degraded.labels(reason).inc()
    return rec


def _popular_fallback(
    model: LoadedModel, request: RecommendationRequest, online: OnlineState | None, why: str
) -> Recommendation:
    skip = {b.sku for b in request.basket} | set(request.exclude_skus)
    unknown = tuple(b.sku for b in request.basket if model.row(b.sku) < 0)
    try:
        items = tuple(
            i for i in model.recommender.popular(request.k + len(skip)) if i.sku not in skip
        )[: request.k]
    except Exception:  # noqa: BLE001
        items = online_popular(online, request)
    return Recommendation(
        items=items, style=NO_STYLE, unknown_skus=unknown, degraded=True, degraded_reason=why
    )
