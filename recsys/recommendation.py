"""What goes into and comes out of the recommender: plain, typed, framework-free records.

Serving maps its JSON to and from these; batch scoring and the MLflow pyfunc do the same. The
``Recommender`` (``recsys.recommender``) is the one thing that turns a request into a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from recsys.controls import CompiledControls

Page = Literal["product", "cart", "checkout"]
PAGES: tuple[str, ...] = ("product", "cart", "checkout")
DEFAULT_ACCESSORY_SLOTS = 4
"""Accessory slots in one answer (``RECSYS_ACCESSORY_SLOTS`` in serving)."""


@dataclass(frozen=True)
class BasketLine:
    sku: str
    quantity: int = 1


@dataclass(frozen=True)
class Filters:
    in_stock: bool = True
    max_price: float | None = None
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class UserContext:
    """What online state knows about the shopper right now (from events since training)."""

    recent_skus: tuple[str, ...] = ()
    style_affinity: dict[str, float] | None = None  # style slug -> weight, sums to 1


@dataclass(frozen=True)
class RecommendationRequest:
    basket: tuple[BasketLine, ...]
    user_id: str | None = None
    session_id: str | None = None
    page: Page = "cart"
    k: int = 10
    exclude_skus: tuple[str, ...] = ()
    filters: Filters = field(default_factory=Filters)
    now: datetime | None = None  # point in time for features; None = the model's "now"
    user_context: UserContext | None = None
    accessory_slots: int = DEFAULT_ACCESSORY_SLOTS  # one accessory section, at most this long
    controls: CompiledControls | None = None  # merchandiser pins/boosts/buries/hides


@dataclass(frozen=True)
class StyleEvidence:
    """One basket item's push toward one style (``weight`` is its share of that style's mass)."""

    sku: str
    title: str
    style: str
    weight: float


@dataclass(frozen=True)
class StyleReading:
    """The style of a basket. ``top`` is None when there is no clear style."""

    top: str | None
    confidence: float
    distribution: dict[str, float]
    evidence: tuple[StyleEvidence, ...] = ()
    second: str | None = None  # a mixed basket may carry two styles
    explanation: str = ""

    def to_dict(self, ndigits: int | None = None) -> dict[str, Any]:
        """Plain JSON values: the one serialised form (API answers, rules preview, batch
        output); ``ndigits`` rounds the numbers."""

        def num(x: float) -> float:
            return float(x) if ndigits is None else round(float(x), ndigits)

        return {
            "top": self.top,
            "second": self.second,
            "confidence": num(self.confidence),
            "distribution": {k: num(v) for k, v in self.distribution.items()},
            "explanation": self.explanation,
            "evidence": [
                {"sku": e.sku, "title": e.title, "style": e.style, "weight": num(e.weight)}
                for e in self.evidence
            ],
        }


NO_STYLE = StyleReading(top=None, confidence=0.0, distribution={}, explanation="no clear style")


@dataclass(frozen=True)
class RecommendedItem:
    sku: str
    score: float
    sources: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class AccessorySlot:
    """One accessory line: ``rule_id`` placed it (highest priority); ``rule_ids`` are every
    fired rule that suggested its category, ``rule_id`` first (what the line's effect is
    credited to)."""

    sku: str
    rule_id: str
    reason: str
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    items: tuple[RecommendedItem, ...]
    style: StyleReading
    accessories: tuple[AccessorySlot, ...] = ()
    unknown_skus: tuple[str, ...] = ()
    degraded: bool = False
    degraded_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    controls_applied: tuple[
        tuple[str, str, str], ...
    ] = ()  # (sku, control id, action), for previews


@dataclass(frozen=True)
class FiredRule:
    """A rule that fired on a basket: the engine applies the rule's constraints; the
    recommender ranks ``candidate_rows`` for this basket and fills up to ``max_items`` slots."""

    rule_id: str
    reason: str  # e.g. "often forgotten with wall paint"
    candidate_rows: tuple[int, ...]  # catalog rows the rule allows, constraints applied
    max_items: int = 1
    priority: int = 0


class AccessoryRules(Protocol):
    """What the recommender needs from the rules engine (``recsys.rules``)."""

    def match(
        self,
        basket_rows: Sequence[int],
        quantities: Sequence[int],
        style: StyleReading,
        page: str,
        now: datetime | None = None,
    ) -> list[FiredRule]: ...
