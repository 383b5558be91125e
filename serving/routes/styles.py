"""``POST /v1/styles/infer``: the interior style a basket says, with evidence."""

from __future__ import annotations

from fastapi import APIRouter

from recsys.recommendation import NO_STYLE, BasketLine
from serving import answer
from serving.deps import CurrentModel, RequestId, SettingsDep
from serving.errors import limit_error
from serving.schemas import StyleRequestIn, StyleResponse

router = APIRouter(tags=["styles"])


@router.post(
    "/v1/styles/infer",
    response_model=StyleResponse,
    summary="Infer the style of a basket",
    description="Style distribution, confidence and the items that carry it. Unknown SKUs are "
    "reported in `unknown_skus`. With no model loaded: no style (`top: null`).",
)
async def infer_style(
    body: StyleRequestIn, model: CurrentModel, settings: SettingsDep, request_id: RequestId
) -> StyleResponse:
    if len(body.basket) > settings.max_basket_items:
        raise limit_error(
            "basket",
            f"too many items: {len(body.basket)} > {settings.max_basket_items} (RECSYS_MAX_BASKET_ITEMS)",
        )
    basket = [BasketLine(b.sku, b.quantity) for b in body.basket]
    if model is None:
        return StyleResponse(
            style=answer.style_out(NO_STYLE),
            unknown_skus=[],
            model_version=None,
            request_id=request_id,
        )
    try:
        reading, unknown = model.recommender.infer_style(basket)
    except Exception:  # noqa: BLE001 - no style is an honest answer
        reading, unknown = NO_STYLE, [b.sku for b in basket if model.row(b.sku) < 0]
    return StyleResponse(
        style=answer.style_out(reading),
        unknown_skus=list(unknown),
        model_version=model.version,
        request_id=request_id,
    )
