"""Answer controls: a merchandiser's pins, boosts, buries and hides on the model's own list.

A control targets items (SKUs, categories, attribute predicates, styles: an item matches when
it meets every non-empty part) and acts on the ranked candidates after the ranker and before
diversity:

* ``hide``: never shown (a discontinued range);
* ``bury`` / ``boost``: scores multiplied by ``multiplier`` (on scores shifted to be positive,
  so it works for any ranker's scale) and/or moved ``shift`` places down / up;
* ``pin``: a SKU placed at ``position`` (1 = first) when it is a candidate of the answer.

Each has placements, a validity window and a priority (higher acts later; a hidden item stays
hidden whatever comes after). ``apply_controls`` is pure; ``CompiledControls`` resolves
targets to catalog rows once, like the rules engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recsys.data.catalog import ATTRIBUTE_COLUMNS, Catalog
from recsys.rules.model import (
    AttributeCondition,
    FieldError,
    Placement,
    RuleValidationError,
    Slug,
    _did_you_mean,
    errors_from_pydantic,
)
from recsys.rules.rules_file import dump_rules_yaml, parse_rules_yaml

Action = Literal["pin", "boost", "bury", "hide"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Target(_Frozen):
    """Which items a control acts on: every non-empty part must hold."""

    skus: list[str] = Field(default_factory=list, max_length=500)
    categories: list[Slug] = Field(default_factory=list, max_length=100)
    attributes: list[AttributeCondition] = Field(default_factory=list, max_length=8)
    styles: list[Slug] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _not_everything(self) -> Target:
        if not (self.skus or self.categories or self.attributes or self.styles):
            raise ValueError(
                "a target needs at least one of skus, categories, attributes or styles"
            )
        return self


def _every_page() -> list[Placement]:
    return ["cart", "checkout", "product"]


class Control(_Frozen):
    """One answer control (the stored and exported document)."""

    id: Slug = Field(max_length=80, examples=["pin-summer-cushion"])
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    action: Action
    target: Target
    position: int | None = Field(None, ge=1, le=100, description="pin: 1-based place in the list.")
    multiplier: float | None = Field(None, gt=0, le=100, description="boost (> 1) or bury (< 1).")
    shift: int | None = Field(
        None, ge=1, le=100, description="boost: places up; bury: places down."
    )
    placements: list[Placement] = Field(default_factory=_every_page, min_length=1)
    priority: int = Field(0, ge=-1000, le=1000)
    enabled: bool = True
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _action_fields(self) -> Control:
        if self.action == "pin":
            if self.position is None:
                raise ValueError("a pin needs a position (1 = first)")
            if (
                len(self.target.skus) != 1
                or self.target.categories
                or self.target.attributes
                or self.target.styles
            ):
                raise ValueError("a pin targets exactly one SKU (target.skus: [<sku>])")
        elif self.position is not None:
            raise ValueError("position is for pins only")
        if self.action in ("boost", "bury"):
            if self.multiplier is None and self.shift is None:
                raise ValueError(f"a {self.action} needs a multiplier or a shift")
            if self.multiplier is not None and (self.multiplier <= 1) == (self.action == "boost"):
                raise ValueError(
                    f"a {self.action} multiplier must be {'above' if self.action == 'boost' else 'below'} 1"
                )
        elif self.multiplier is not None or self.shift is not None:
            raise ValueError("multiplier and shift are for boost and bury only")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self

    def active_at(self, now: datetime) -> bool:
        return (self.valid_from is None or now >= self.valid_from) and (
            self.valid_to is None or now < self.valid_to
        )

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_control(document: Mapping[str, Any]) -> Control:
    """Validate a control document; ``RuleValidationError`` lists every bad field."""
    if not isinstance(document, Mapping):
        raise RuleValidationError([FieldError("", "a control must be a mapping of fields")])
    try:
        return Control.model_validate(dict(document))
    except ValidationError as exc:
        raise RuleValidationError(errors_from_pydantic(exc)) from None


def parse_controls_yaml(
    text: str, check: Callable[[Control], list[FieldError]] | None = None
) -> list[Control]:
    """``version: 1`` + ``controls: [...]``, all or nothing (the rules file format)."""
    return parse_rules_yaml(text, check, parse=parse_control, key="controls")


def dump_controls_yaml(controls: Sequence[Control]) -> str:
    return dump_rules_yaml(controls, key="controls")


def control_summary(control: Control) -> str:
    """One line for lists: 'pin SKU-1 at 1', 'bury category laminate-flooring x0.3'."""
    t = control.target
    what = ", ".join(
        [
            *t.skus,
            *t.categories,
            *(f"{a.key}={a.value}" for a in t.attributes),
            *(f"style {s}" for s in t.styles),
        ]
    )
    how = {"pin": f" at {control.position}", "hide": ""}.get(control.action, "")
    if control.multiplier is not None:
        how += f" x{control.multiplier:g}"
    if control.shift is not None:
        how += f" {'+' if control.action == 'boost' else '-'}{control.shift}"
    return f"{control.action} {what}{how}"


def check_control_against_catalog(control: Control, catalog: Catalog) -> list[FieldError]:
    """Names a control uses that the catalog does not know (with a 'did you mean')."""
    errors = []
    cats = list(catalog.categories)
    for i, c in enumerate(control.target.categories):
        if c not in catalog.categories:
            errors.append(
                FieldError(
                    f"target.categories[{i}]", f"unknown category {c!r}{_did_you_mean(c, cats)}"
                )
            )
    for i, s in enumerate(control.target.skus):
        if s not in catalog.ids:
            errors.append(FieldError(f"target.skus[{i}]", f"unknown SKU {s!r}"))
    styles = list(catalog.taxonomy.slugs)
    for i, s in enumerate(control.target.styles):
        if s not in styles:
            errors.append(
                FieldError(f"target.styles[{i}]", f"unknown style {s!r}{_did_you_mean(s, styles)}")
            )
    return errors


@dataclass(frozen=True)
class AppliedControl:
    """A control that changed an answer: which item, which control, what it did."""

    row: int
    control_id: str
    action: Action


@dataclass(frozen=True)
class _Resolved:
    control: Control
    mask: np.ndarray  # (n_items,) bool: the items the control targets


class CompiledControls:
    """Controls resolved against one catalog (targets -> row masks), applied per answer."""

    def __init__(
        self, controls: Sequence[Control], catalog: Catalog, item_styles: np.ndarray | None = None
    ) -> None:
        n = len(catalog)
        styles = catalog.style_labels() if item_styles is None else np.asarray(item_styles)
        cols = {s: j for j, s in enumerate(catalog.taxonomy.slugs)}
        top = styles.argmax(axis=1) if styles.shape[1] else np.zeros(n, np.int64)
        styled = styles.max(axis=1) > 0 if styles.shape[1] else np.zeros(n, bool)
        frame = catalog.frame
        resolved = []
        for c in sorted((c for c in controls if c.enabled), key=lambda c: c.priority):
            t = c.target
            mask = np.ones(n, bool)
            if t.skus:
                rows = [catalog.ids.get(s) for s in t.skus]
                m = np.zeros(n, bool)
                m[[r for r in rows if r is not None and r >= 0]] = True
                mask &= m
            if t.categories:
                codes = [
                    catalog.categories.index(x) for x in t.categories if x in catalog.categories
                ]
                mask &= np.isin(catalog.category_codes, codes)
            for cond in t.attributes:
                key, value = cond.key.lower(), cond.value.lower()
                if key in ATTRIBUTE_COLUMNS and key in frame:
                    col = frame[key].astype(str).str.lower().to_numpy()
                else:
                    col = np.asarray(
                        [str((a or {}).get(key, "")).lower() for a in frame["attributes"]]
                    )
                mask &= col == value
            if t.styles:
                wanted = [cols[s] for s in t.styles if s in cols]
                mask &= styled & np.isin(top, wanted)
            resolved.append(_Resolved(c, mask))
        self.controls_ = resolved
        self.n_items_ = n

    def __len__(self) -> int:
        return len(self.controls_)

    def active(self, page: str, now: datetime | None = None) -> list[_Resolved]:
        now = now or datetime.now(UTC)
        return [
            r for r in self.controls_ if page in r.control.placements and r.control.active_at(now)
        ]


def apply_controls(
    rows: np.ndarray,
    scores: np.ndarray,
    controls: CompiledControls | None,
    *,
    page: str,
    now: datetime | None = None,
) -> tuple[np.ndarray, np.ndarray, list[AppliedControl]]:
    """The candidates ``rows`` (n,) with ranker ``scores`` (n,), after the active controls.

    Returns ``(order, scores, applied)``: ``order`` holds positions into ``rows``, best first,
    without hidden items; ``scores`` (n,) are the adjusted scores (multipliers applied); and
    ``applied`` names every control that changed something. Controls act in priority order
    (lowest first, so the highest-priority one has the last word); pins are placed last.
    """
    rows = np.asarray(rows, np.int64)
    scores = np.asarray(scores, np.float64).copy()
    order = np.argsort(-scores, kind="stable")
    if controls is None or not len(rows):
        return order, scores, []
    applied: list[AppliedControl] = []
    hidden = np.zeros(len(rows), bool)
    shifts = np.zeros(len(rows), np.int64)
    pins: list[tuple[int, int, str]] = []  # (position in rows, place, control id)
    valid = (rows >= 0) & (rows < controls.n_items_)
    for r in controls.active(page, now):
        c = r.control
        hit = np.zeros(len(rows), bool)
        hit[valid] = r.mask[rows[valid]]
        hit &= ~hidden
        if not hit.any():
            continue
        if c.action == "hide":
            hidden |= hit
        elif c.action == "pin":
            pos = int(np.flatnonzero(hit)[0])
            pins = [p for p in pins if p[0] != pos] + [(pos, int(c.position or 1), c.id)]
            continue  # reported when placed
        else:
            if c.multiplier is not None:
                floor = scores.min()
                scores = np.where(
                    hit, (scores - floor + 1e-6) * c.multiplier + floor - 1e-6, scores
                )
            if c.shift is not None:
                shifts[hit] += c.shift if c.action == "boost" else -c.shift
        applied.extend(AppliedControl(int(rows[i]), c.id, c.action) for i in np.flatnonzero(hit))
    order = np.argsort(-scores, kind="stable")
    order = order[~hidden[order]]
    if shifts.any():
        place = np.arange(len(order), dtype=np.float64) - shifts[order]
        # ties: a moved item goes before the one it reached
        order = order[np.lexsort((shifts[order] == 0, place))]
    pinned = [p for p in pins if not hidden[p[0]]]
    if pinned:
        rest = [int(i) for i in order if int(i) not in {p[0] for p in pinned}]
        for pos, at, cid in sorted(pinned, key=lambda p: p[1]):
            rest.insert(min(at - 1, len(rest)), pos)
            applied.append(AppliedControl(int(rows[pos]), cid, "pin"))
        order = np.asarray(rest, np.int64)
    return order, scores, applied
