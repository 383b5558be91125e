"""Pipeline configuration: which candidate generators feed the ranker (with quotas and
hyperparameters), the ranker and its parameters, the feature set, the diversity step and the
training protocol.

Pydantic models that mirror ``recsys/pipeline.yaml`` one to one (unknown keys refused, frozen);
their ``model_dump()`` is what a bundle stores and what ``hash`` identifies. Errors become a
``ConfigError`` naming the YAML path (``candidates.generators[2].quota: ...``). Hyperparameter
defaults live in one place, the component's constructor: ``params`` only holds what the YAML
overrides and is checked against that constructor.

Feature names are defined in ``feature_store`` (which this pure library must not import):
``load_pipeline_config(path, known_features=...)`` checks them when given the list;
``feature_store.load_pipeline_config`` passes it for you.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import typing
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from recsys.candidates.base import CandidateGenerator, TrainingData
from recsys.data.taxonomy import StyleTaxonomy, load_taxonomy

if TYPE_CHECKING:
    from recsys.ranking.ranker import LightGBMRanker

DEFAULT_CONFIG_PATH = Path(__file__).with_name("pipeline.yaml")
CONFIG_VERSION = 1

# Generator kinds -> "module:Class" (classes implement recsys.candidates.base.CandidateGenerator).
KNOWN_GENERATORS: dict[str, str] = {
    "item_knn": "recsys.candidates.item_knn:ItemKNNCandidates",
    "cf": "recsys.candidates.cf:CFCandidates",
    "co_purchase": "recsys.candidates.co_purchase:CoPurchaseCandidates",
    "style": "recsys.candidates.style_retrieval:StyleCandidates",
    "popular": "recsys.candidates.popular:PopularCandidates",
    "ease": "recsys.candidates.ease:EASECandidates",
    "rp3beta": "recsys.candidates.rp3beta:RP3betaCandidates",
    "repeat": "recsys.candidates.repeat:RepeatPurchaseCandidates",
}
# Ranker kinds -> "module:Class" (the pipeline passes its seed; ``seed`` is not a config param).
KNOWN_RANKERS: dict[str, str] = {
    "lightgbm": "recsys.ranking.ranker:LightGBMRanker",
}
# Generator kinds that are collaborative filtering (dropped by the "without CF" ablation).
CF_KINDS = frozenset({"cf", "item_knn"})


class ConfigError(ValueError):
    """A pipeline configuration that cannot be used; the message names the bad key."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def _import(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _check_params(
    cls: type, params: Mapping[str, Any], label: str, reserved: Collection[str] = ()
) -> None:
    """Reject a parameter ``cls`` does not take and a value of the wrong type (checked against
    the constructor's annotations; the constructor's defaults stay the only defaults)."""
    sig = inspect.signature(cls)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    allowed = [n for n in sig.parameters if n not in reserved]
    for key in params:
        if key not in allowed:
            raise ValueError(f"{label} has no parameter {key!r}; allowed: {', '.join(allowed)}")
    try:
        hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # an annotation this module cannot resolve: names were checked above
        return
    fields: dict[str, Any] = {n: (hints.get(n, Any), ...) for n in params}
    try:
        create_model(f"{cls.__name__}Params", **fields).model_validate(dict(params))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(
            f"{label} parameter {where}: {err['msg']}, got {err.get('input')!r}"
        ) from None


class _Section(BaseModel):
    """One mapping of the YAML: unknown keys refused (with the allowed ones listed), ``null``
    values mean "default", immutable once built."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    allowed = ", ".join(sorted(cls.model_fields))
                    raise ValueError(f"unknown key {key!r}; allowed: {allowed}")
            return {k: v for k, v in data.items() if v is not None}
        return data


class _Component(_Section):
    """A part configured as ``kind`` + ``params``: ``kind`` a key of the subclass's
    ``registry``, ``params`` checked against that class's constructor (``reserved`` names are
    filled in by the pipeline, not the config)."""

    registry: ClassVar[Mapping[str, str]]
    role: ClassVar[str]
    reserved: ClassVar[tuple[str, ...]] = ()

    @field_validator("kind", check_fields=False)
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in cls.registry:
            raise ValueError(
                f"unknown {cls.role} {kind!r}; known: {', '.join(sorted(cls.registry))}"
            )
        return kind

    @field_validator("params", check_fields=False)
    @classmethod
    def _known_params(cls, params: Mapping[str, Any], info: ValidationInfo) -> Mapping[str, Any]:
        kind = info.data.get("kind")
        if kind is None or not (info.context or {}).get("check_params", True):
            return params
        try:
            component = _import(cls.registry[kind])
        except (ImportError, AttributeError):
            return params  # not installed yet: checked again when the pipeline is built
        _check_params(component, params, kind, cls.reserved)
        return params


class GeneratorSpec(_Component):
    """One candidate source: ``name`` is its source label (unique), ``kind`` a key of
    ``KNOWN_GENERATORS`` (default: the name), ``quota`` how many candidates it may contribute
    per basket, ``params`` its constructor's arguments (the rest keep the class's defaults)."""

    registry = KNOWN_GENERATORS
    role = "generator"

    name: str = Field(min_length=1)
    kind: str
    quota: int = Field(default=50, ge=1)
    params: Mapping[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults_to_name(cls, data: Any) -> Any:
        if (
            isinstance(data, Mapping)
            and data.get("kind") is None
            and isinstance(data.get("name"), str)
        ):
            return {**data, "kind": data["name"]}
        return data

    def generator_class(self) -> type[CandidateGenerator]:
        """Import the generator class (ImportError names the missing module)."""
        cls: type[CandidateGenerator] = _import(KNOWN_GENERATORS[self.kind])
        return cls

    def build(self, seed: int | None = None) -> CandidateGenerator:
        """An unfitted generator with this spec's params (plus ``seed`` when its class is
        ``seeded`` and the params do not set one), labelled with the spec's name."""
        cls = self.generator_class()
        params = dict(self.params)
        if cls.seeded and seed is not None:
            params.setdefault("seed", seed)
        gen = cls(**params)
        gen.name = self.name
        return gen


def fit_generators(
    specs: Sequence[GeneratorSpec], data: TrainingData, seed: int
) -> list[CandidateGenerator]:
    """Build and fit the generators in config order. A generator whose class declares
    ``fit_inputs`` receives the fitted state of the latest generator of the class it names
    fitted before it (the style generator reuses the co-purchase category complements)."""
    fitted: list[CandidateGenerator] = []
    for spec in specs:
        gen = spec.build(seed)
        inputs = {}
        for keyword, (source_cls, attribute) in type(gen).fit_inputs.items():
            source = next((g for g in reversed(fitted) if isinstance(g, source_cls)), None)
            if source is not None:
                inputs[keyword] = getattr(source, attribute)
        gen.fit(data, **inputs)
        fitted.append(gen)
    return fitted


class CandidatesConfig(_Section):
    total: int = Field(default=200, ge=1)  # candidates scored per basket
    generators: tuple[GeneratorSpec, ...] = Field(default=(), strict=False)

    @field_validator("generators")
    @classmethod
    def _unique_names(cls, gens: tuple[GeneratorSpec, ...]) -> tuple[GeneratorSpec, ...]:
        names = [g.name for g in gens]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate name(s) {dup}")
        return gens


class RankerConfig(_Component):
    """The learned ranker, configured like a generator: ``kind`` a key of ``KNOWN_RANKERS``,
    ``params`` its constructor's arguments (defaults: the class's)."""

    registry = KNOWN_RANKERS
    role = "ranker"
    reserved = ("seed",)

    kind: str = "lightgbm"
    enabled: bool = True
    params: Mapping[str, Any] = Field(default_factory=dict)
    exclude_features: tuple[str, ...] = Field(default=(), strict=False)

    def build(self, seed: int) -> LightGBMRanker:
        """An unfitted ranker with these params and the pipeline's seed."""
        ranker: LightGBMRanker = _import(KNOWN_RANKERS[self.kind])(**self.params, seed=seed)
        return ranker


class DiversityConfig(_Section):
    max_per_category: int = Field(
        default=3, ge=0
    )  # at most this many items of one category; 0 = off
    style_slots: int = Field(
        default=0, ge=0
    )  # positions kept for items in the basket's style; 0 = off


class StyleConfig(_Section):
    enabled: bool = True
    params: Mapping[str, Any] = Field(default_factory=dict)  # ItemStyleModel's arguments
    styles: tuple[str, ...] | None = Field(
        default=None, strict=False
    )  # restrict to these; None = all

    @field_validator("styles")
    @classmethod
    def _known_styles(
        cls, styles: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if styles is None:
            return None
        taxonomy = (info.context or {}).get("taxonomy") or load_taxonomy()
        for s in styles:
            if s not in taxonomy:
                raise ValueError(f"unknown style {s!r}; known: {', '.join(taxonomy.slugs)}")
        return styles


class TrainingConfig(_Section):
    """Temporal protocol: the interactions are cut by time into four consecutive windows
    (shares of the time span): generators/statistics, ranker examples, ranker validation
    (early stopping), evaluation. ``hide_fraction`` of each order's distinct items is hidden
    and must be recovered from the rest."""

    generator_share: float = 0.6
    ranker_share: float = 0.2
    validation_share: float = 0.1
    evaluation_share: float = 0.1
    hide_fraction: float = 0.3
    ranker_hide_draws: int = Field(
        default=1, ge=1
    )  # up to this many hide draws per ranker-window order, within max_train_orders baskets
    negatives_per_basket: int = Field(
        default=50, ge=0
    )  # ranker examples keep every positive and this many negatives; 0 = all
    max_train_orders: int = Field(default=10_000, ge=0)
    max_validation_orders: int = Field(default=2_000, ge=0)
    max_eval_orders: int = Field(default=3_000, ge=0)
    refit_generators: bool = True  # refit generators on all data before the evaluation window

    @model_validator(mode="after")
    def _protocol(self) -> TrainingConfig:
        shares = (
            self.generator_share,
            self.ranker_share,
            self.validation_share,
            self.evaluation_share,
        )
        if any(s <= 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(f"the four *_share values must be > 0 and sum to 1, got {shares}")
        if not 0 < self.hide_fraction < 1:
            raise ValueError(f"hide_fraction must be between 0 and 1, got {self.hide_fraction}")
        return self


class PipelineConfig(_Section):
    """The whole pipeline, frozen; the sections are those of ``pipeline.yaml``. ``hash``
    identifies it in the bundle and in MLflow."""

    version: int = CONFIG_VERSION
    feature_set: str = "basket_completion"  # defined in feature_store/definitions.py
    candidates: CandidatesConfig = CandidatesConfig()
    ranker: RankerConfig = RankerConfig()
    diversity: DiversityConfig = DiversityConfig()
    style: StyleConfig = StyleConfig()
    training: TrainingConfig = TrainingConfig()

    @field_validator("version")
    @classmethod
    def _supported(cls, version: int) -> int:
        if version != CONFIG_VERSION:
            raise ValueError(f"version {version!r} is not supported (expected {CONFIG_VERSION})")
        return version

    @property
    def hash(self) -> str:
        """Short sha256 of the canonical JSON form (``model_dump``)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values in the YAML's shape (what a bundle and an MLflow run store)."""
        return self.model_dump(mode="json")

    # Shorthands for the values the pipeline steps read.
    @property
    def generators(self) -> tuple[GeneratorSpec, ...]:
        return self.candidates.generators

    @property
    def generator_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.candidates.generators)

    @property
    def total_candidates(self) -> int:
        return self.candidates.total

    @property
    def max_per_category(self) -> int:
        return self.diversity.max_per_category

    @property
    def style_slots(self) -> int:
        return self.diversity.style_slots

    @property
    def style_enabled(self) -> bool:
        return self.style.enabled

    @property
    def style_params(self) -> Mapping[str, Any]:
        return self.style.params

    @property
    def styles(self) -> tuple[str, ...] | None:
        return self.style.styles

    def without_generators(self, kinds: Collection[str]) -> PipelineConfig:
        kept = tuple(g for g in self.candidates.generators if g.kind not in kinds)
        return self.model_copy(
            update={"candidates": self.candidates.model_copy(update={"generators": kept})}
        )

    def validate_features(self, known_features: Collection[str], source: str = "<config>") -> None:
        """Reject ``ranker.exclude_features`` naming a feature the feature set does not define."""
        for name in self.ranker.exclude_features:
            if name not in known_features:
                raise ConfigError(
                    source,
                    f"ranker.exclude_features: unknown feature {name!r}; known: "
                    f"{', '.join(sorted(known_features))}",
                )


_PLAIN = {
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true/false",
    "string_type": "expected a text value",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "missing": "required",
}


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    """The first problem, named by its YAML path (``candidates.generators[2].quota``)."""
    err = exc.errors()[0]
    where = _yaml_path(err["loc"]) or "top level"
    kind = err["type"]
    if kind == "value_error":
        problem = str(err["ctx"]["error"])
    elif kind in _PLAIN:
        problem = _PLAIN[kind] + ("" if kind == "missing" else f", got {err['input']!r}")
    elif kind in ("greater_than_equal", "greater_than"):
        op = ">=" if kind == "greater_than_equal" else ">"
        bound = err["ctx"]["ge" if kind == "greater_than_equal" else "gt"]
        problem = f"must be {op} {bound}, got {err['input']!r}"
    else:
        problem = f"{err['msg']}, got {err['input']!r}"
    if kind == "missing" and where.endswith(".name"):
        problem = "required (a short label such as 'item_knn')"
    return ConfigError(source, f"{where}: {problem}")


def parse_pipeline_config(
    data: Any,
    source: str = "<config>",
    *,
    taxonomy: StyleTaxonomy | None = None,
    known_features: Collection[str] | None = None,
    check_params: bool = True,
) -> PipelineConfig:
    """Validate a mapping (parsed YAML) into a ``PipelineConfig``."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, "expected a mapping at the top level")
    try:
        cfg = PipelineConfig.model_validate(
            data, context={"taxonomy": taxonomy, "check_params": check_params}
        )
    except ValidationError as exc:
        raise _config_error(exc, source) from None
    if known_features is not None:
        cfg.validate_features(known_features, source)
    return cfg


def load_pipeline_config(
    path: str | Path | None = None,
    *,
    taxonomy: StyleTaxonomy | None = None,
    known_features: Collection[str] | None = None,
) -> PipelineConfig:
    """Load a pipeline YAML (the bundled default ``recsys/pipeline.yaml`` when None)."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    if not path.exists():
        raise ConfigError(str(path), "config file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), f"not valid YAML: {exc}") from exc
    return parse_pipeline_config(data, str(path), taxonomy=taxonomy, known_features=known_features)


def _from_flat(d: Mapping[str, Any]) -> dict[str, Any]:
    """The nested form of a config stored by the flat ``to_dict`` of earlier versions
    (bundles written before the config mirrored the YAML)."""
    ranker = dict(d.get("ranker") or {})
    head = {k: ranker.pop(k) for k in ("enabled", "exclude_features") if k in ranker}
    return {
        "version": d.get("version", CONFIG_VERSION),
        "feature_set": d.get("feature_set"),
        "candidates": {"total": d.get("total_candidates"), "generators": d.get("generators")},
        "ranker": {**head, "kind": "lightgbm", "params": ranker},
        "diversity": {
            "max_per_category": d.get("max_per_category"),
            "style_slots": d.get("style_slots"),
        },
        "style": {
            "enabled": d.get("style_enabled"),
            "params": d.get("style_params"),
            "styles": d.get("styles"),
        },
        "training": d.get("training"),
    }


def config_from_dict(data: Mapping[str, Any], source: str = "<bundle config>") -> PipelineConfig:
    """Rebuild a config as stored in a bundle (``PipelineConfig.to_dict``; the flat form of
    earlier versions is read too)."""
    if not isinstance(data, Mapping):
        raise ConfigError(source, "expected a mapping")
    raw = _from_flat(data) if "total_candidates" in data else data
    return parse_pipeline_config(raw, source, check_params=False)
