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
    "suggest": {
        "categories": ["pendant-lamp"],
        "constraints": {"match_style": True, "max_price": 150},
    },
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


class EffectOut(BaseModel):
    """What a rule or control did over a window (answers shown ``from`` <= t < ``to``)."""

    model_config = ConfigDict(populate_by_name=True)
    kind: Literal["rule", "control"]
    id: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    impressions: int = Field(
        description="Lines it placed (accessories) or moved (pin/boost/bury) in shown answers."
    )
    baskets: int = Field(description="Answers (baskets) it acted on.")
    added: int = Field(description="Of those lines, added to a cart (attributed).")
    bought: int = Field(description="Of those lines, bought (attributed).")
    attached: int = Field(description="Of those lines, added or bought.")
    attach_rate: float = Field(description="attached / impressions (0 when not shown).")
    revenue: float = Field(description="Attributed revenue of those lines (price x quantity).")


class RuleOut(BaseModel):
    id: str
    version: int = Field(
        description="Send it back (If-Match or `version`) when you change the rule."
    )
    updated_at: datetime
    updated_by: str
    summary: str = Field(examples=["laminate-flooring => underlay"])
    rule: dict[str, Any]
    problems: list[str] = Field(
        default_factory=list, description="Why the rule may not fire against the served catalog."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="On save: other enabled rules suggesting the same thing for the same trigger.",
    )
    effect: EffectOut | None = Field(
        None, description="With `effect=true` on the list: its effect over the window asked for."
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


class FieldChangeOut(BaseModel):
    field: str = Field(examples=["priority"])
    old: Any = Field(examples=[100])
    new: Any = Field(examples=[120])


class VersionOut(BaseModel):
    version: int
    action: str
    author: str
    at: datetime
    changes: list[str]
    diff: list[FieldChangeOut] = Field(
        default_factory=list,
        description="Each changed field with its old and new value (from the version before).",
    )
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
    only_draft: bool = Field(
        False, description="Preview the draft alone, without the stored rules."
    )
    draft_control: dict[str, Any] | None = Field(
        None,
        description="An answer control under edit: previewed in place of the stored control with its id.",
    )


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
    reason: str = Field(
        description="The shopper's reason, then (preview only) the controls that acted on it."
    )
    controls: list[str] = Field(
        default_factory=list, description="Ids of the answer controls that acted on it."
    )


class PreviewOut(BaseModel):
    source: Literal["recommender", "rules-only"]
    style: dict[str, Any] | None
    unknown_skus: list[str]
    fired: list[FiredOut]
    accessories: list[AccessoryOut] = Field(
        description="What checkout would show in the accessory slots."
    )
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
        examples=[
            "82% of shoppers who bought tile adhesive bought grout in the same order or within two weeks"
        ]
    )
    later_lift: float
    signal: str = Field(
        description="'forgotten' (came back for it later) or 'bought together' (lift only)."
    )
    accepted: bool
    covered_by: list[str] = Field(
        default_factory=list,
        description="Enabled rules that already suggest this accessory for this anchor.",
    )
    extends: list[str] = Field(
        default_factory=list,
        description="Enabled rules triggered by this anchor without this accessory: accept into one of them "
        "(`POST .../accept?into=<rule id>`) instead of creating a new rule.",
    )
    rule: dict[str, Any]


class SuggestionList(BaseModel):
    suggestions: list[SuggestionOut]
    total: int = Field(description="Suggestions matching the filters (all pages).")
    offset: int = 0


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


EXAMPLE_CONTROL: dict[str, Any] = {
    "id": "pin-summer-cushion",
    "name": "Summer cushion first on the cart page",
    "action": "pin",
    "target": {"skus": ["SKU-000123"]},
    "position": 1,
    "placements": ["cart"],
    "valid_from": "2026-06-01T00:00:00Z",
    "valid_to": "2026-06-15T00:00:00Z",
}
EXAMPLE_BURY: dict[str, Any] = {
    "id": "bury-old-laminate",
    "name": "Discontinued laminate range",
    "action": "bury",
    "target": {
        "categories": ["laminate-flooring"],
        "attributes": [{"key": "wear_class", "value": "AC3"}],
    },
    "multiplier": 0.2,
    "shift": 5,
}
CONTROL_EXAMPLES = {
    "pin": {"summary": "Pin a seasonal SKU for two weeks", "value": EXAMPLE_CONTROL},
    "bury": {"summary": "Bury a discontinued range", "value": EXAMPLE_BURY},
    "hide": {
        "summary": "Never show a category",
        "value": {
            "id": "hide-grout",
            "name": "Grout out of stock",
            "action": "hide",
            "target": {"categories": ["grout"]},
        },
    },
}


class ControlOut(BaseModel):
    id: str
    version: int = Field(
        description="Send it back (If-Match or `version`) when you change the control."
    )
    updated_at: datetime
    updated_by: str
    summary: str = Field(examples=["pin SKU-000123 at 1"])
    control: dict[str, Any]
    problems: list[str] = Field(
        default_factory=list, description="Names the served catalog does not know."
    )
    effect: EffectOut | None = Field(
        None, description="With `effect=true` on the list: its effect over the window asked for."
    )


class ControlList(BaseModel):
    controls: list[ControlOut]
    total: int


class ReplayIn(BaseModel):
    """A draft rule and/or control replayed over the purchases of the last ``days`` days."""

    model_config = ConfigDict(extra="forbid")
    days: int = Field(
        7, ge=1, le=365, description="How far back to read baskets from the event store."
    )
    page: Literal["checkout", "cart", "product"] = "checkout"
    draft: dict[str, Any] | None = Field(
        None, description="A rule (in place of the stored one with its id)."
    )
    draft_control: dict[str, Any] | None = Field(
        None, description="An answer control, replayed alone."
    )
    max_baskets: int = Field(
        500, ge=1, le=5000, description="The most recent baskets, at most this many."
    )


class ProductCountOut(BaseModel):
    sku: str
    title: str
    category: str | None
    count: int


class OverlapOut(BaseModel):
    rule_id: str
    baskets: int = Field(description="Baskets where both suggest the same category.")
    categories: list[str]


class EvidenceOut(BaseModel):
    anchor: str
    accessory: str
    completion_rate: float
    sentence: str


class RuleReplayOut(BaseModel):
    rule_id: str
    fired: int
    fired_share: float = Field(description="Share of the replayed baskets on which the rule fires.")
    most_shown: list[ProductCountOut]
    overlaps: list[OverlapOut]
    evidence: list[EvidenceOut] = Field(
        description="Mined co-purchase statistics for its trigger => suggestion pairs."
    )


class ControlReplayOut(BaseModel):
    control_id: str
    answers: int
    acted: int
    acted_share: float = Field(description="Share of the replayed answers the control changed.")
    most_affected: list[ProductCountOut]


class ReplayOut(BaseModel):
    days: int
    baskets: int
    rule: RuleReplayOut | None = None
    control: ControlReplayOut | None = None
    note: str = ""
