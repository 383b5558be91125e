"""A/B experiments as data: variants, traffic shares, deterministic assignment, and the
pipeline knobs a variant may turn.

Assignment is a pure function of (experiment name, unit id): the first 8 bytes of
``sha256("<experiment>\\x00<unit>")`` as a number in [0, 1), cut by the cumulative shares. No
state, no randomness, no process-local hash seed: every worker, replica and restart puts a
shopper in the same variant, and a shopper never changes variant while the experiment runs
(variants cannot be edited once it started).

Knobs are applied by ``with_knobs``, which returns a *view* of a fitted recommender
(``Recommender.replace`` with other pipeline knobs or generator list; the arrays, indexes and
models are shared, nothing of the original is changed), so one loaded model serves several
variants.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys.recommendation import PAGES
from recsys.recommender import PipelineKnobs, Recommender

NAME_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
Status = Literal["draft", "running", "stopped"]
Placement = Literal["product", "cart", "checkout"]
assert set(PAGES) == {"product", "cart", "checkout"}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Knobs(_Frozen):
    """Per-variant pipeline overrides; ``None`` keeps the model's own setting."""

    ranker: bool | None = Field(
        default=None, description="False: answer in the merged candidate order."
    )
    style_slots: int | None = Field(
        default=None, ge=0, le=50, description="'Complete the look' slots; 0 = off."
    )
    generators: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="Keep only these candidate generators (by name), e.g. ['co_purchase']. "
        "Needs ranker: false (the ranker's features are per generator).",
    )

    @model_validator(mode="after")
    def _generators_need_no_ranker(self) -> Knobs:
        if self.generators is not None and self.ranker is not False:
            raise ValueError("generators can only be restricted with ranker: false")
        return self

    @property
    def is_default(self) -> bool:
        return self.ranker is None and self.style_slots is None and self.generators is None


class RulesSelection(_Frozen):
    """Which merchandiser rules fill the accessory slots: all, none, or those with a tag."""

    mode: Literal["all", "none", "tags"] = "all"
    tags: list[str] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _tags(self) -> RulesSelection:
        if (self.mode == "tags") != bool(self.tags):
            raise ValueError("tags are needed with mode 'tags', and only then")
        return self


class Variant(_Frozen):
    name: str = Field(min_length=1, max_length=40)
    share: float = Field(gt=0, le=1, description="Share of the experiment's traffic.")
    model: str | None = Field(
        None,
        max_length=500,
        description="Model URI (models:/name/3, models:/name@alias, a bundle path); null = the served champion.",
    )
    knobs: Knobs = Field(default_factory=Knobs)
    rules: RulesSelection = Field(default_factory=RulesSelection)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("lower-case letters/digits joined by '-' or '_', e.g. 'full-pipeline'")
        return v


class Experiment(_Frozen):
    """One experiment document (what the store versions)."""

    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=2000)
    placements: list[Placement] = Field(min_length=1, max_length=3)
    variants: list[Variant] = Field(min_length=2, max_length=10)
    control: str | None = Field(
        None, description="The variant others are compared to; default the first."
    )
    status: Status = "draft"
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                "lower-case letters/digits joined by '-' or '_', e.g. 'ranker-vs-copurchase'"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        total = sum(v.share for v in self.variants)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"variant shares must add up to 1, got {total:g}")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not a variant ({', '.join(names)})")
        if len(set(self.placements)) != len(self.placements):
            raise ValueError("duplicate placement")
        return self

    @property
    def control_variant(self) -> str:
        return self.control or self.variants[0].name

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def bucket(experiment: str, unit: str) -> float:
    """The unit's place in [0, 1) for this experiment (stable everywhere, see module doc)."""
    digest = hashlib.sha256(f"{experiment}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(experiment: Experiment, unit: str) -> Variant:
    """The variant of ``unit`` (a user id, else a session id)."""
    x = bucket(experiment.name, unit)
    edge = 0.0
    for v in experiment.variants:
        edge += v.share
        if x < edge:
            return v
    return experiment.variants[-1]  # float rounding at the top edge


def with_knobs(recommender: Recommender, knobs: Knobs) -> Recommender:
    """A view of ``recommender`` with ``knobs`` applied (``Recommender.replace``: the fitted
    parts are shared, the original is not touched)."""
    if knobs.is_default:
        return recommender
    current = recommender.knobs
    changes: dict[str, Any] = {
        "knobs": PipelineKnobs(
            ranker=current.ranker if knobs.ranker is None else knobs.ranker,
            max_per_category=current.max_per_category,
            style_slots=current.style_slots if knobs.style_slots is None else knobs.style_slots,
        )
    }
    if knobs.generators is not None:
        names = {g.name for g in recommender.generators}
        missing = sorted(set(knobs.generators) - names)
        if missing:
            raise ValueError(
                f"generators {missing} are not in this model (it has {', '.join(sorted(names))})"
            )
        changes["generators"] = [
            g for g in recommender.generators if g.name in set(knobs.generators)
        ]
    return recommender.replace(**changes)
