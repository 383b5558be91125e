"""The JSON the API accepts and returns. Unknown fields are refused (``extra="forbid"``) so a
typo in a client is a clear 422 instead of a silently ignored filter.

Static bounds here are the hard ceilings; deployment limits (``Settings.max_k``,
``max_basket_items``, ``max_event_batch``) are checked per request in ``serving.limits``.
The examples use SKUs of the default sample world (``recsys sample-data --seed 7``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from recsys.timestamps import ALLOWED_RANGE, to_utc

# Real SKUs of the default sample world (seed 7): grey porcelain tile + paintable wallpaper,
# and a wall paint for the checkout example.
EXAMPLE_TILE = "SKU-000004"  # Grey porcelain stoneware tile 60x120 concrete look
EXAMPLE_WALLPAPER = "SKU-000646"  # Paintable White non-woven wallpaper
EXAMPLE_PAINT = "SKU-000971"  # Interior wall paint burgundy, satin, 1 l
EXAMPLE_CATEGORY = "porcelain-tile"

SKU = Field(min_length=1, max_length=128, description="Catalog SKU.")
ID = Field(None, min_length=1, max_length=128)


class Strict(BaseModel):
    # no inf/NaN from outside (JSON 1e400 parses as inf): they are not JSON on the way out
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class FieldProblem(BaseModel):
    field: str = Field(description="Where: e.g. `basket[0].quantity` or `k`.")
    message: str = Field(description="What is wrong and what is allowed.")
    type: str


class Problem(BaseModel):
    """Every 4xx/503 body: one readable sentence, plus one entry per field for 422."""

    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": Problem, "description": "Invalid request: which field, what to fix."},
    413: {"model": Problem, "description": "Body larger than RECSYS_MAX_BODY_BYTES."},
    503: {"model": Problem, "description": "Temporarily unavailable; retry (Retry-After)."},
}


class BasketItem(Strict):
    sku: str = SKU
    quantity: int = Field(1, ge=1, le=10_000)


class FiltersIn(Strict):
    in_stock: bool = Field(True, description="Only items in stock.")
    max_price: float | None = Field(None, ge=0, description="Upper price bound.")
    categories: list[str] | None = Field(
        None, max_length=100, description="Only these categories (null = all)."
    )


class RecommendationRequestIn(Strict):
    basket: list[BasketItem] = Field(
        default_factory=list,
        max_length=10_000,
        description="What is in the cart (or the product being viewed). Empty = popular items. "
        "At most RECSYS_MAX_BASKET_ITEMS (default 200) lines.",
    )
    user_id: str | None = ID
    session_id: str | None = ID
    page: Literal["product", "cart", "checkout"] = "cart"
    k: int = Field(10, description="How many items (1..RECSYS_MAX_K, default max 100).")
    exclude_skus: list[str] = Field(default_factory=list, max_length=10_000)
    filters: FiltersIn = Field(default_factory=FiltersIn)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "basket": [
                        {"sku": EXAMPLE_TILE, "quantity": 1},
                        {"sku": EXAMPLE_WALLPAPER, "quantity": 1},
                    ],
                    "page": "cart",
                    "k": 5,
                },
                {"basket": [{"sku": EXAMPLE_PAINT, "quantity": 2}], "page": "checkout", "k": 5},
            ]
        },
    )


class ItemOut(BaseModel):
    sku: str
    title: str | None
    category: str | None
    price: float | None
    score: float
    sources: list[str]
    reason: str
    slot: Literal["items", "accessories"] = "items"
    position: int = Field(0, description="1-based place in its slot; send it back with events.")


class AccessoryOut(BaseModel):
    sku: str
    title: str | None
    category: str | None
    rule_id: str
    reason: str
    slot: Literal["items", "accessories"] = "accessories"
    position: int = Field(0, description="1-based place in its slot; send it back with events.")


class EvidenceOut(BaseModel):
    sku: str
    title: str
    style: str
    weight: float


class StyleOut(BaseModel):
    top: str | None
    confidence: float
    distribution: dict[str, float]
    evidence: list[EvidenceOut] = Field(default_factory=list)
    second: str | None = None
    explanation: str = ""


class StyleResponse(BaseModel):
    style: StyleOut
    unknown_skus: list[str]
    model_version: str | None
    request_id: str


class RecommendationResponse(BaseModel):
    items: list[ItemOut]
    accessories: list[AccessoryOut]
    style: StyleOut
    unknown_skus: list[str]
    model_version: str | None
    degraded: bool
    degraded_reason: str | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    request_id: str
    recommendation_id: str = Field(
        "",
        description="Names this answer: send it with the click, cart and purchase events it leads to.",
    )
    experiment: str | None = Field(
        None, description="The running experiment that served it, if any."
    )
    variant: str = Field("default", description="The experiment variant that served it.")


class StyleRequestIn(Strict):
    basket: list[BasketItem] = Field(max_length=10_000)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"basket": [{"sku": EXAMPLE_TILE, "quantity": 1}, {"sku": EXAMPLE_WALLPAPER}]}
            ]
        },
    )


class ProductOut(BaseModel):
    sku: str
    title: str
    category: str | None
    price: float
    in_stock: bool
    styles: list[str]


class ProductList(BaseModel):
    items: list[ProductOut]
    total: int = Field(description="How many products match (items holds at most `limit`).")
    model_version: str | None


EventType = Literal["view", "add_to_cart", "purchase"]
EventTime = Annotated[datetime, AfterValidator(to_utc)]


class EventIn(Strict):
    event_id: str = Field(min_length=1, max_length=128, description="Client-made unique id.")
    type: EventType
    sku: str = SKU
    user_id: str | None = ID
    session_id: str | None = ID
    order_id: str | None = ID
    ts: EventTime = Field(
        description=f"When it happened (ISO 8601; UTC if no offset), within {ALLOWED_RANGE}; "
        "stored in UTC."
    )
    quantity: int = Field(1, ge=1, le=10_000)
    recommendation_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The answer this event came from (a click is a `view` naming it). An unknown "
        "id is accepted and counted as unattributed.",
    )
    position: int | None = Field(
        None, ge=1, le=10_000, description="The item's `position` in that answer."
    )
    price: float | None = Field(None, ge=0, le=1e9, description="Unit price paid (purchases).")


class EventBatchIn(Strict):
    events: list[EventIn] = Field(
        min_length=1,
        max_length=100_000,
        description="At most RECSYS_MAX_EVENT_BATCH (default 1000) events.",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "event_id": "3f1c9a52-0d7e-4c55-9b1e-5b8f0c2d7a10",
                            "type": "add_to_cart",
                            "sku": EXAMPLE_TILE,
                            "session_id": "sess-42",
                            "ts": "2026-03-01T12:00:00Z",
                            "quantity": 1,
                        }
                    ]
                }
            ]
        },
    )


class RejectedEventOut(BaseModel):
    index: int = Field(description="Position of the event in the batch.")
    field: str
    message: str
    type: str = "invalid_event"


class EventAck(BaseModel):
    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events already stored earlier (same event_id).")
    rejected: list[RejectedEventOut] = Field(
        default_factory=list,
        description="Events refused one by one (e.g. a NUL character); the rest of the batch is "
        "stored. Fix them and send them again.",
    )
    conflicting_duplicates: list[str] = Field(
        default_factory=list,
        description="Duplicates (already stored `event_id`) sent with a different payload: the "
        "stored event is kept. Event ids must be unique per event.",
    )
    unknown_skus: list[str] = Field(description="Stored, but not in the served catalog.")


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    ready: bool
    model_loaded: bool
    model_version: str | None
    store_reachable: bool = Field(description="The event store took a test write (rolled back).")
    online_state_reachable: bool
    rules_ready: bool = Field(
        True, description="Merchandiser rules compiled (or no rules package)."
    )
    problems: list[str] = Field(
        description="Short names of what is wrong (no paths or error texts)."
    )
    details: list[str] | None = Field(
        None, description="With the admin key only: paths and error texts behind `problems`."
    )


class ModelInfo(BaseModel):
    loaded: bool
    version: str | None
    run_id: str | None
    source_uri: str
    resolved_uri: str | None
    loaded_at: datetime | None
    bundle_dir: str | None
    catalog_size: int | None
    last_error: str | None
    last_check: datetime | None
    poll_seconds: float


class ReloadOut(BaseModel):
    outcome: Literal["swapped", "unchanged", "failed", "busy", "started"]
    version: str | None
    message: str
    seconds: float
