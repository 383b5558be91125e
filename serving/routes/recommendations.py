"""``POST /v1/recommendations``: cart, checkout and product-page recommendations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from recsys.settings import Settings
from serving import answer
from serving.deps import RecommendContext, RecommendContextDep
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
        raise limit_error(
            "k", f"must be between 1 and {settings.max_k} (RECSYS_MAX_K); got {body.k}"
        )
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


def _answer(body: RecommendationRequestIn, ctx: RecommendContext) -> Response:
    check_limits(body, ctx.settings)
    request = answer.to_request(body, ctx.online, ctx.settings.accessory_slots, ctx.controls)
    routed = ctx.experiments.route(body.page, body.user_id or body.session_id, ctx.model, ctx.rules)
    rec = answer.recommend(
        routed.model,
        request,
        rules=routed.rules,
        deadline=ctx.deadline,
        online=ctx.online,
        metrics=ctx.metrics,
    )
    response = answer.response_from(routed.model, rec, ctx.request_id)
    ctx.recorder.identify(
        response, body, experiment=routed.experiment, variant=routed.variant, rec=rec
    )
    return answer.json_response(response)


def build_router(*, sync_handlers: bool = False) -> APIRouter:
    """The router; ``sync_handlers`` runs the handler in the thread pool (``def``) instead of
    on the event loop (``async def``): see experiments/load_test.py for the measurement."""
    router = APIRouter(tags=["recommendations"])
    kwargs: dict[str, Any] = dict(
        response_model=RecommendationResponse,
        summary="Recommend complements for a basket",
        description=DESCRIPTION,
        responses={
            422: {
                "model": Problem,
                "description": "Invalid request: the body says which field and why.",
            }
        },
    )

    if sync_handlers:

        @router.post("/v1/recommendations", **kwargs)
        def recommend_sync(body: RecommendationRequestIn, ctx: RecommendContextDep) -> Response:
            return _answer(body, ctx)

    else:

        @router.post("/v1/recommendations", **kwargs)
        async def recommend(body: RecommendationRequestIn, ctx: RecommendContextDep) -> Response:
            return _answer(body, ctx)

    return router
