"""The merchandiser rule: what a rule says, validated so that every error names its field.

A rule reads "when the basket holds <trigger> (and not <unless>), suggest <categories/SKUs>
under <constraints> on <placements>". Rules are plain documents (dicts/YAML) at the edges and
frozen pydantic models inside; ``recsys.rules.engine`` compiles a list of them against a catalog.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from recsys.recommendation import PAGES
from recsys.timestamps import to_utc

Placement = Literal["checkout", "cart", "product"]
RULE_ID_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_LIST = 200
MAX_MESSAGE = 300  # characters of one error message
MAX_ERRORS = 50  # problems reported for one document; the rest are counted


@dataclass(frozen=True)
class FieldError:
    """One problem in a rule document: ``path`` is dotted with list indexes
    (``suggest.categories[0]``), ``message`` says what is wrong and how to fix it."""

    path: str
    message: str

    def __post_init__(self) -> None:
        # messages quote user input: keep an error body small whatever was sent
        if len(self.path) > MAX_MESSAGE:
            object.__setattr__(self, "path", self.path[: MAX_MESSAGE - 3] + "...")
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE - 3] + "...")

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class RuleValidationError(ValueError):
    """A rule (or a batch of rules) that does not validate; ``errors`` lists every problem."""

    def __init__(self, errors: Sequence[FieldError], prefix: str = "") -> None:
        self.errors = list(errors[:MAX_ERRORS])
        if len(errors) > MAX_ERRORS:
            more = len(errors) - MAX_ERRORS
            self.errors.append(
                FieldError("", f"... and {more} more problem(s) not listed; fix these first")
            )
        text = "; ".join(str(e) for e in self.errors) or "invalid rule"
        super().__init__(f"{prefix}{text}")


class _Frozen(BaseModel):
    # allow_inf_nan=False: 1e400 parses as inf and was stored as non-standard JSON Infinity
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, allow_inf_nan=False
    )


def _slug(value: str) -> str:
    if not _SLUG_RE.match(value):
        raise ValueError(
            f"{value!r} is not a slug (lower-case words joined by '-', e.g. 'wall-paint')"
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]


def _check_slugs(values: list[str], what: str) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what} in the list")
    return values


class AttributeCondition(_Frozen):
    """A basket item attribute test, e.g. ``material = metal`` (case-insensitive)."""

    key: str = Field(min_length=1, max_length=64, examples=["material"])
    value: str = Field(min_length=1, max_length=128, examples=["metal"])


class Trigger(_Frozen):
    """When the rule fires. ``match: any`` = the basket holds any listed category/SKU or an item
    with all ``attributes``; ``match: all`` = every listed category and SKU (and, if given, an
    item with the attributes). ``min_quantity`` counts the quantity of triggering basket lines;
    ``styles`` (optional) requires the basket's inferred style (top or second) to be one of them."""

    match: Literal["any", "all"] = "any"
    categories: list[Slug] = Field(default_factory=list, max_length=MAX_LIST)
    skus: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    attributes: list[AttributeCondition] = Field(default_factory=list, max_length=8)
    styles: list[Slug] = Field(default_factory=list, max_length=32)
    min_quantity: int = Field(1, ge=1, le=10_000)

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return _check_slugs(v, "category")

    @field_validator("styles")
    @classmethod
    def _styles(cls, v: list[str]) -> list[str]:
        return _check_slugs(v, "style")

    @field_validator("skus")
    @classmethod
    def _skus(cls, v: list[str]) -> list[str]:
        if any(not s for s in v):
            raise ValueError("empty SKU")
        return v

    @model_validator(mode="after")
    def _has_item_condition(self) -> Trigger:
        if not (self.categories or self.skus or self.attributes):
            raise ValueError(
                "a trigger needs at least one of categories, skus or attributes "
                "(what in the basket makes the rule fire)"
            )
        return self


class Constraints(_Frozen):
    """Which of the suggested items may be shown."""

    in_stock: bool = True
    max_price: float | None = Field(None, gt=0, examples=[20.0])
    match_style: bool = False  # only items of the basket's style (style-neutral items pass)
    skip_if_in_basket: bool = True  # drop a suggested category the basket already holds


class Suggest(_Frozen):
    """What the rule proposes: categories (the ranker picks the SKU) and/or explicit SKUs."""

    categories: list[Slug] = Field(default_factory=list, max_length=MAX_LIST)
    skus: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    max_items: int = Field(
        1,
        ge=1,
        le=20,
        description="how many categories (one line each) the rule may claim in the accessory "
        "section; lines the section has left over may show a second choice of a category shown",
    )
    constraints: Constraints = Field(default_factory=lambda: Constraints.model_validate({}))

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        return _check_slugs(v, "category")

    @model_validator(mode="after")
    def _non_empty(self) -> Suggest:
        if not (self.categories or self.skus):
            raise ValueError("suggest needs at least one category or SKU")
        return self


def _default_placements() -> list[Placement]:
    return ["checkout"]


class Rule(_Frozen):
    """One merchandiser rule (a frozen, validated document)."""

    id: str = Field(min_length=1, max_length=80, examples=["paint-gloves"])
    name: str = Field(min_length=1, max_length=200, examples=["Paint needs gloves"])
    description: str = Field("", max_length=2000)
    reason: str | None = Field(
        None,
        max_length=200,
        description="Shown to shoppers; default 'often forgotten with <trigger>'.",
    )
    enabled: bool = True
    priority: int = Field(0, ge=-1000, le=1000, description="Higher fires first.")
    placements: list[Placement] = Field(default_factory=_default_placements, min_length=1)
    trigger: Trigger
    suggest: Suggest
    unless: list[Slug] = Field(
        default_factory=list,
        max_length=MAX_LIST,
        description="Categories: if the basket holds any, the rule does not fire.",
    )
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    tags: list[str] = Field(default_factory=list, max_length=32)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not RULE_ID_RE.match(v):
            raise ValueError(
                "must be lower-case letters/digits joined by '-' or '_', e.g. 'paint-gloves'"
            )
        return v

    @field_validator("unless")
    @classmethod
    def _unless(cls, v: list[str]) -> list[str]:
        return _check_slugs(v, "category")

    @field_validator("placements")
    @classmethod
    def _placements(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("duplicate placement")
        return v

    @field_validator("valid_from", "valid_to")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return to_utc(v) if v is not None else None  # the one timestamp check

    @model_validator(mode="after")
    def _window(self) -> Rule:
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    @property
    def shopper_reason(self) -> str:
        """What the shopper reads next to the accessory."""
        if self.reason:
            return self.reason
        names = self.trigger.categories or self.trigger.skus
        if names:
            return f"often forgotten with {' and '.join(n.replace('-', ' ') for n in names[:2])}"
        return f"often bought together ({self.name})"

    def active_at(self, now: datetime) -> bool:
        return (self.valid_from is None or now >= self.valid_from) and (
            self.valid_to is None or now < self.valid_to
        )

    def to_document(self) -> dict[str, Any]:
        """Plain JSON-able dict (defaults included), the stored and exported form."""
        return self.model_dump(mode="json")


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def errors_from_pydantic(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    """Pydantic's errors as ``FieldError`` with dotted paths (``suggest.categories[0]``)."""
    out = []
    for err in exc.errors():
        loc = err["loc"]
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling)"
        elif err["type"] == "missing":
            msg = "required"
        path = _path(loc)
        out.append(FieldError(f"{prefix}{path}" if path else prefix.rstrip("."), msg))
    return out


def parse_rule(document: Mapping[str, Any]) -> Rule:
    """Validate a rule document; ``RuleValidationError`` lists every bad field."""
    if not isinstance(document, Mapping):
        raise RuleValidationError([FieldError("", "a rule must be a mapping of fields")])
    try:
        return Rule.model_validate(dict(document))
    except ValidationError as exc:
        raise RuleValidationError(errors_from_pydantic(exc)) from None


def _did_you_mean(value: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
    if not close:
        # substring hints catch 'paint' -> 'wall-paint' that difflib ranks low
        close = [k for k in known if value in k or k in value][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


def check_against_catalog(
    rule: Rule,
    categories: Sequence[str],
    skus: Container[str] | None = None,
    styles: Sequence[str] = (),
) -> list[FieldError]:
    """Names a rule uses that the catalog does not know (with a 'did you mean')."""
    errors: list[FieldError] = []
    known = set(categories)

    def cats(path: str, values: Sequence[str]) -> None:
        for i, c in enumerate(values):
            if c not in known:
                errors.append(
                    FieldError(
                        f"{path}[{i}]", f"unknown category {c!r}{_did_you_mean(c, categories)}"
                    )
                )

    cats("trigger.categories", rule.trigger.categories)
    cats("suggest.categories", rule.suggest.categories)
    cats("unless", rule.unless)
    if skus is not None:
        for path, values in (
            ("trigger.skus", rule.trigger.skus),
            ("suggest.skus", rule.suggest.skus),
        ):
            for i, s in enumerate(values):
                if s not in skus:
                    errors.append(FieldError(f"{path}[{i}]", f"unknown SKU {s!r}"))
    if styles:
        for i, s in enumerate(rule.trigger.styles):
            if s not in styles:
                errors.append(
                    FieldError(
                        f"trigger.styles[{i}]", f"unknown style {s!r}{_did_you_mean(s, styles)}"
                    )
                )
    return errors


def rule_summary(rule: Rule) -> str:
    """One line for lists: 'wall-paint => protective-gloves, masking-tape'."""
    left = ", ".join(rule.trigger.categories + rule.trigger.skus) or ", ".join(
        f"{a.key}={a.value}" for a in rule.trigger.attributes
    )
    right = ", ".join(rule.suggest.categories + rule.suggest.skus)
    return f"{left} => {right}"


def now_utc() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "PAGES",
    "AttributeCondition",
    "Constraints",
    "FieldError",
    "Placement",
    "Rule",
    "RuleValidationError",
    "Suggest",
    "Trigger",
    "check_against_catalog",
    "errors_from_pydantic",
    "parse_rule",
    "rule_summary",
]
