"""``POST /v1/recommendations``: cart, checkout and product-page recommendations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from recsys.settings import Settings
from serving import answer
from serving.deps import (
    CurrentModel,
    Deadline,
    MetricsDep,
    OnlineStateDep,
    RequestId,
    RulesDep,
    SettingsDep,
)
from serving.errors import limit_error
from serving.schemas import Problem, RecommendationRequestIn, RecommendationResponse

DESCRIPTION = """Recommendations for a basket on a page.

* `items`: ranked complements with score, sources and a human reason.
* `accessories`: forgotten-accessory slots (cart and checkout) from merchandiser rules.
* `style`: the basket's inferred interior style with evidence.
* Unknown SKUs are reported in `unknown_skus`, not fatal; an empty basket gives popular items.
* Answers inside the latency budget (`RECSYS_LATENCY_BUDGET_MS`): if the ranker cannot finish
  in time, or no model is loaded, the answer is flagged `degraded: true` with the reason.
"""


def check_limits(body: RecommendationRequestIn, settings: Settings) -> None:
    if not 1 <= body.k <= settings.max_k:
        raise limit_error("k", f"must be between 1 and {settings.max_k} (RECSYS_MAX_K); got {body.k}")
    if len(body.basket) > settings.max_basket_items:
        raise limit_error(
            "basket",
            f"too many items: {len(body.basket)} > {settings.max_basket_items} "
            "(RECSYS_MAX_BASKET_ITEMS); send the most recent lines only",
        )
    if len(body.exclude_skus) > settings.max_basket_items:
        raise limit_error(
            "exclude_skus",
            f"too many SKUs: {len(body.exclude_skus)} > {settings.max_basket_items}",
        )


def _answer(body, model, rules, deadline, online, metrics, settings, request_id):  # noqa: ANN001, ANN202
    check_limits(body, settings)
    request = answer.to_request(body, online)
    rec = answer.recommend(
        model, request, rules=rules, deadline=deadline, online=online, metrics=metrics
    )
    return answer.response_from(model, rec, request_id)


def build_router(*, sync_handlers: bool = False) -> APIRouter:
    """The router; ``sync_handlers`` runs the handler in the thread pool (``def``) instead of
    on the event loop (``async def``): see experiments/load_test.py for the measurement."""
    router = APIRouter(tags=["recommendations"])
    kwargs: dict[str, Any] = dict(
        response_model=RecommendationResponse,
        summary="Recommend complements for a basket",
        description=DESCRIPTION,
        responses={422: {"model": Problem, "description": "Invalid request: the body says which field and why."}},
    )

    if sync_handlers:

        @router.post("/v1/recommendations", **kwargs)
        def recommend_sync(
            body: RecommendationRequestIn,
            model: CurrentModel,
            rules: RulesDep,
            deadline: Deadline,
            online: OnlineStateDep,
            metrics: MetricsDep,
            settings: SettingsDep,
            request_id: RequestId,
        ) -> RecommendationResponse:
            return _answer(body, model, rules, deadline, online, metrics, settings, request_id)

    else:

        @router.post("/v1/recommendations", **kwargs)
        async def recommend(
            body: RecommendationRequestIn,
            model: CurrentModel,
            rules: RulesDep,
            deadline: Deadline,
            online: OnlineStateDep,
            metrics: MetricsDep,
            settings: SettingsDep,
            request_id: RequestId,
        ) -> RecommendationResponse:
            return _answer(body, model, rules, deadline, online, metrics, settings, request_id)

    return router
