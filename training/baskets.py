"""The basket-in / recommendations-out record format shared by batch scoring (JSON lines) and
the MLflow pyfunc (DataFrames).

Input record: ``{"basket_id": "b1", "skus": ["..."], "user_id": null, "page": "cart", "k": 10}``
(``user_id``, ``page`` and ``k`` optional). Output record: ``{"basket_id": "b1", "items":
[{"sku", "score", "sources", "reason"}], "style": {...}, "unknown_skus": [...],
"accessories": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recsys.recommendation import (
    PAGES,
    BasketLine,
    Recommendation,
    RecommendationRequest,
)

INPUT_FIELDS = ("basket_id", "skus", "user_id", "page", "k")
MAX_K = 1000


class BasketFormatError(ValueError):
    """One input record is not a valid basket; the message says which field and why."""


def parse_basket(
    record: Any, default_k: int, default_page: str = "cart"
) -> tuple[str, RecommendationRequest]:
    """Validate one input record and turn it into (basket_id, request)."""
    if not isinstance(record, Mapping):
        raise BasketFormatError(f"expected a JSON object, got {type(record).__name__}")
    unknown = sorted(set(record) - set(INPUT_FIELDS))
    if unknown:
        raise BasketFormatError(
            f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(INPUT_FIELDS)}"
        )
    basket_id = record.get("basket_id")
    if not isinstance(basket_id, str | int) or isinstance(basket_id, bool) or str(basket_id) == "":
        raise BasketFormatError("'basket_id' must be a non-empty string")
    skus = record.get("skus")
    if not isinstance(skus, list | tuple) or not all(isinstance(s, str) for s in skus):
        raise BasketFormatError("'skus' must be a list of SKU strings")
    user_id = record.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise BasketFormatError("'user_id' must be a string or null")
    page = record.get("page") or default_page
    if page not in PAGES:
        raise BasketFormatError(f"'page' must be one of {', '.join(PAGES)}, got {page!r}")
    k = record.get("k")
    k = default_k if k is None else k
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise BasketFormatError(f"'k' must be a whole number from 1 to {MAX_K}, got {k!r}")
    request = RecommendationRequest(
        basket=tuple(BasketLine(s) for s in skus),
        user_id=user_id or None,
        page=page,  # type: ignore[arg-type]  # checked against PAGES above
        k=k,
    )
    return str(basket_id), request


def items_to_list(rec: Recommendation) -> list[dict[str, Any]]:
    return [
        {
            "sku": it.sku,
            "score": round(float(it.score), 6),
            "sources": list(it.sources),
            "reason": it.reason,
        }
        for it in rec.items
    ]


def recommendation_to_record(basket_id: str, rec: Recommendation) -> dict[str, Any]:
    """One output record (see the module docstring)."""
    out: dict[str, Any] = {
        "basket_id": basket_id,
        "items": items_to_list(rec),
        "style": rec.style.to_dict(ndigits=6),
        "unknown_skus": list(rec.unknown_skus),
        "accessories": [
            {"sku": a.sku, "rule_id": a.rule_id, "reason": a.reason} for a in rec.accessories
        ],
    }
    if rec.degraded:
        out["degraded_reason"] = rec.degraded_reason
    return out
