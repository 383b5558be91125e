"""Product page recommendations and catalog look-up."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query

from recsys.recommendation import RecommendationRequest
from serving import answer
from serving.deps import CurrentModel, MetricsDep, OnlineStateDep, RequestId, SettingsDep
from serving.schemas import (
    EXAMPLE_CATEGORY,
    EXAMPLE_TILE,
    Problem,
    ProductList,
    ProductOut,
    RecommendationResponse,
)

router = APIRouter(tags=["products"])


@router.get(
    "/v1/products/{sku}/recommendations",
    response_model=RecommendationResponse,
    summary="Product page: complete the look and bought together",
    responses={404: {"model": Problem, "description": "The SKU is not in the served catalog."}},
)
async def product_recommendations(
    sku: Annotated[str, Path(min_length=1, max_length=128, examples=[EXAMPLE_TILE])],
    model: CurrentModel,
    online: OnlineStateDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    request_id: RequestId,
    k: Annotated[int, Query(ge=1, description="How many items (at most RECSYS_MAX_K).")] = 10,
) -> RecommendationResponse:
    if k > settings.max_k:
        raise HTTPException(
            422, f"k: must be between 1 and {settings.max_k} (RECSYS_MAX_K); got {k}"
        )
    if model is None:
        rec = answer.recommend(
            None,
            RecommendationRequest(basket=(), page="product", k=k, exclude_skus=(sku,)),
            rules=None,
            deadline=0.0,
            online=online,
            metrics=metrics,
        )
        return answer.response_from(None, rec, request_id)
    if model.row(sku) < 0:
        raise HTTPException(
            404, f"unknown sku {sku!r}: not in the served catalog ({model.version})"
        )
    try:
        rec = model.recommender.product_recommendations(sku, k)
    except Exception:  # noqa: BLE001 - fall back like the basket endpoint
        metrics.fallbacks.labels("pipeline_error").inc()
        rec = answer.recommend(
            model,
            RecommendationRequest(basket=(), page="product", k=k, exclude_skus=(sku,)),
            rules=None,
            deadline=0.0,
            online=online,
            metrics=metrics,
        )
    return answer.response_from(model, rec, request_id)


@router.get(
    "/v1/products",
    response_model=ProductList,
    summary="Catalog look-up by category, style or text",
    responses={
        503: {"model": Problem, "description": "No model (and so no catalog) is loaded yet."}
    },
)
def list_products(
    model: CurrentModel,
    category: Annotated[str | None, Query(max_length=128, examples=[EXAMPLE_CATEGORY])] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words in the title, category or SKU (prefixes and typos "
            "tolerated), most relevant first.",
            examples=["wall paint"],
        ),
    ] = None,
    style: Annotated[str | None, Query(max_length=64, examples=["loft"])] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> ProductList:
    if model is None:
        raise HTTPException(
            503, "no model loaded yet: the catalog is unavailable", headers={"Retry-After": "5"}
        )
    catalog = model.catalog
    frame = catalog.frame
    mask = np.ones(len(catalog), bool)
    if category:
        mask &= (frame["category"] == category).to_numpy()
    if style:
        if style not in catalog.taxonomy:
            known = ", ".join(catalog.taxonomy.slugs)
            raise HTTPException(422, f"style: unknown style {style!r}; known: {known}")
        mask &= frame["styles"].map(lambda tags: style in tags).to_numpy(bool)
    rows = catalog.search(q) if q else np.arange(len(catalog))  # most relevant first
    rows = rows[mask[rows]]
    items = [
        ProductOut(
            sku=r.sku,
            title=r.title,
            category=r.category,
            price=float(r.price),
            in_stock=bool(r.in_stock),
            styles=list(r.styles),
        )
        for r in frame.iloc[rows[:limit]].itertuples(index=False)
    ]
    return ProductList(items=items, total=int(len(rows)), model_version=model.version)
