"""JSON shapes of the rules API (requests and responses) with OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import ProductOut

EXAMPLE_RULE: dict[str, Any] = {
    "id": "laminate-underlay-skirting",
    "name": "Laminate needs underlay and skirting boards",
    "reason": "often forgotten with laminate flooring",
    "priority": 100,
    "placements": ["checkout", "cart"],
    "trigger": {"categories": ["laminate-flooring"]},
    "suggest": {
        "categories": ["underlay"],
        "max_items": 2,
        "constraints": {"in_stock": True, "max_price": 40.0},
    },
    "unless": ["underlay"],
    "tags": ["flooring"],
}
EXAMPLE_QUANTITY_RULE: dict[str, Any] = {
    "id": "paint-bulk-gloves",
    "name": "Large paint orders need two pairs of gloves",
    "trigger": {"categories": ["wall-paint"], "min_quantity": 3},
    "suggest": {"categories": ["protective-gloves"], "max_items": 2},
}
EXAMPLE_STYLE_RULE: dict[str, Any] = {
    "id": "metal-table-loft-lamp",
    "name": "Metal tables go with loft lamps",
    "placements": ["cart", "product"],
    "trigger": {"attributes": [{"key": "material", "value": "metal"}], "styles": ["loft"]},
    "suggest": {"categories": ["pendant-lamp"], "constraints": {"match_style": True, "max_price": 150}},
}
RULE_EXAMPLES = {
    "category": {"summary": "Laminate => underlay", "value": EXAMPLE_RULE},
    "quantity": {"summary": "Quantity threshold", "value": EXAMPLE_QUANTITY_RULE},
    "style": {"summary": "Attribute + style trigger", "value": EXAMPLE_STYLE_RULE},
}
RULE_UPDATE_EXAMPLES = {
    "update": {
        "summary": "Edit based on version 3",
        "value": {**EXAMPLE_RULE, "version": 3, "priority": 120},
    }
}


class FieldErrorOut(BaseModel):
    path: str = Field(examples=["suggest.categories[0]"])
    message: str = Field(examples=["unknown category 'paintt'; did you mean 'wall-paint'?"])


class ValidationErrorOut(BaseModel):
    detail: str
    errors: list[FieldErrorOut]


class RuleOut(BaseModel):
    id: str
    version: int = Field(description="Send it back (If-Match or `version`) when you change the rule.")
    updated_at: datetime
    updated_by: str
    summary: str = Field(examples=["laminate-flooring => underlay"])
    rule: dict[str, Any]
    problems: list[str] = Field(
        default_factory=list, description="Why the rule may not fire against the served catalog."
    )


class RuleList(BaseModel):
    rules: list[RuleOut]
    total: int


class ConflictOut(BaseModel):
    detail: str
    current: RuleOut | None


class DeletedOut(BaseModel):
    id: str
    version: int
    deleted: bool = True


class VersionOut(BaseModel):
    version: int
    action: str
    author: str
    at: datetime
    changes: list[str]
    rule: dict[str, Any] | None


class HistoryOut(BaseModel):
    id: str
    current_version: int | None
    versions: list[VersionOut]


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_version: int = Field(ge=1, description="The version whose content becomes current again.")
    version: int = Field(ge=1, description="The current version your decision was based on.")


class ValidateOut(BaseModel):
    valid: bool
    errors: list[FieldErrorOut]
    summary: str | None = None
    problems: list[str] = Field(default_factory=list)


class BasketLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=128)
    quantity: int = Field(1, ge=1, le=10_000)


class PreviewIn(BaseModel):
    """Same basket shape as ``POST /v1/recommendations``, plus an optional draft rule."""

    model_config = ConfigDict(extra="forbid")
    basket: list[BasketLineIn] = Field(min_length=1, max_length=200)
    page: Literal["checkout", "cart", "product"] = "checkout"
    k: int = Field(10, ge=1, le=100)
    user_id: str | None = Field(None, max_length=128)
    draft: dict[str, Any] | None = Field(
        None, description="A rule under edit: previewed in place of the stored rule with its id."
    )
    only_draft: bool = Field(False, description="Preview the draft alone, without the stored rules.")


class FiredOut(BaseModel):
    rule_id: str
    name: str
    reason: str
    priority: int
    max_items: int
    candidate_count: int
    candidates: list[ProductOut]


class AccessoryOut(BaseModel):
    sku: str
    title: str
    category: str | None
    price: float
    rule_id: str
    reason: str


class ItemOut(BaseModel):
    sku: str
    title: str
    score: float
    reason: str


class PreviewOut(BaseModel):
    source: Literal["recommender", "rules-only"]
    style: dict[str, Any] | None
    unknown_skus: list[str]
    fired: list[FiredOut]
    accessories: list[AccessoryOut] = Field(description="What checkout would show in the accessory slots.")
    items: list[ItemOut] = Field(default_factory=list)
    note: str = ""


class SuggestionOut(BaseModel):
    id: str
    anchor: str
    accessory: str
    anchor_orders: int
    together: int
    later: int
    lift: float
    forgotten_rate: float
    completion_rate: float
    window_days: int
    sentence: str = Field(
        examples=["82% of shoppers who bought tile adhesive bought grout in the same order or within two weeks"]
    )
    later_lift: float
    signal: str = Field(description="'forgotten' (came back for it later) or 'bought together' (lift only).")
    accepted: bool
    covered_by: list[str] = Field(
        default_factory=list, description="Enabled rules that already suggest this accessory for this anchor."
    )
    rule: dict[str, Any]


class SuggestionList(BaseModel):
    suggestions: list[SuggestionOut]
    total: int


class ImportOut(BaseModel):
    dry_run: bool
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    deleted: list[str]


class ProductList(BaseModel):
    items: list[ProductOut]
    total: int


class CategoryList(BaseModel):
    categories: list[str]
