"""Pipeline configuration: which candidate generators feed the ranker (with quotas and
hyperparameters), the ranker's parameters, the feature set, the diversity step and the
training protocol. Parsed from YAML into a frozen object and validated before any work
(an unknown generator, style or parameter is rejected with a message that names it).

Feature names are defined in ``feature_store`` (which this pure library must not import):
``load_pipeline_config(path, known_features=...)`` checks them when given the list;
``feature_store.load_pipeline_config`` passes it for you.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from recsys.candidates.base import CandidateGenerator, TrainingData
from recsys.data.taxonomy import StyleTaxonomy, load_taxonomy

DEFAULT_CONFIG_PATH = Path(__file__).with_name("pipeline.yaml")
CONFIG_VERSION = 1

# Generator kinds -> "module:Class" (classes implement recsys.candidates.base.CandidateGenerator).
KNOWN_GENERATORS: dict[str, str] = {
    "item_knn": "recsys.candidates.item_knn:ItemKNNCandidates",
    "cf": "recsys.candidates.cf:CFCandidates",
    "co_purchase": "recsys.candidates.co_purchase:CoPurchaseCandidates",
    "style": "recsys.candidates.style_retrieval:StyleCandidates",
    "popular": "recsys.candidates.popular:PopularCandidates",
}
# Generator kinds that are collaborative filtering (dropped by the "without CF" ablation).
CF_KINDS = frozenset({"cf", "item_knn"})


class ConfigError(ValueError):
    """A pipeline configuration that cannot be used; the message names the bad key."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


@dataclass(frozen=True)
class GeneratorSpec:
    """One candidate source: ``name`` is its source label (unique), ``kind`` a key of
    ``KNOWN_GENERATORS``, ``quota`` how many candidates it may contribute per basket."""

    name: str
    kind: str
    quota: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def generator_class(self) -> type[CandidateGenerator]:
        """Import the generator class (ImportError names the missing module)."""
        module, _, cls = KNOWN_GENERATORS[self.kind].partition(":")
        return getattr(importlib.import_module(module), cls)

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


@dataclass(frozen=True)
class RankerConfig:
    enabled: bool = True
    n_estimators: int = 150
    num_leaves: int = 31
    learning_rate: float = 0.05
    min_data_in_leaf: int = 20
    feature_fraction: float = 0.9
    early_stopping_rounds: int = 20
    exclude_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingConfig:
    """Temporal protocol: the interactions are cut by time into four consecutive windows
    (shares of the time span): generators/statistics, ranker examples, ranker validation
    (early stopping), evaluation. ``hide_fraction`` of each order's distinct items is hidden
    and must be recovered from the rest."""

    generator_share: float = 0.6
    ranker_share: float = 0.2
    validation_share: float = 0.1
    evaluation_share: float = 0.1
    hide_fraction: float = 0.3
    negatives_per_basket: int = 50  # ranker examples keep every positive and this many negatives; 0 = all
    max_train_orders: int = 10_000
    max_validation_orders: int = 2_000
    max_eval_orders: int = 3_000
    refit_generators: bool = True  # refit generators on all data before the evaluation window


@dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline, frozen. ``hash`` identifies it in the bundle and in MLflow."""

    feature_set: str = "basket_completion"
    generators: tuple[GeneratorSpec, ...] = ()
    total_candidates: int = 200
    ranker: RankerConfig = field(default_factory=RankerConfig)
    max_per_category: int = 3
    style_slots: int = 0  # list positions kept for items in the basket's style ("complete the look")
    style_enabled: bool = True
    style_params: Mapping[str, Any] = field(default_factory=dict)
    styles: tuple[str, ...] | None = None  # restrict to these taxonomy styles; None = all
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["version"] = CONFIG_VERSION
        d["generators"] = [
            {"name": g.name, "kind": g.kind, "quota": g.quota, "params": dict(g.params)}
            for g in self.generators
        ]
        d["style_params"] = dict(self.style_params)
        d["ranker"]["exclude_features"] = list(self.ranker.exclude_features)
        d["styles"] = list(self.styles) if self.styles is not None else None
        return d

    @property
    def hash(self) -> str:
        """Short sha256 of the canonical JSON form."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def generator_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.generators)

    def without_generators(self, kinds: Collection[str]) -> PipelineConfig:
        from dataclasses import replace

        return replace(self, generators=tuple(g for g in self.generators if g.kind not in kinds))

    def validate_features(self, known_features: Collection[str], source: str = "<config>") -> None:
        """Reject ``ranker.exclude_features`` naming a feature the feature set does not define."""
        for name in self.ranker.exclude_features:
            if name not in known_features:
                raise ConfigError(
                    source,
                    f"ranker.exclude_features: unknown feature {name!r}; known: "
                    f"{', '.join(sorted(known_features))}",
                )


def _check_keys(data: Mapping[str, Any], allowed: Collection[str], where: str, source: str) -> None:
    for key in data:
        if key not in allowed:
            raise ConfigError(
                source, f"{where}: unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
            )


def _dataclass_from(cls: type, data: Any, where: str, source: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise ConfigError(source, f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in cls.__dataclass_fields__.values()}  # type: ignore[attr-defined]
    _check_keys(data, fields, where, source)
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        default = getattr(defaults, key)
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(source, f"{where}.{key}: expected true/false, got {value!r}")
        elif isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(source, f"{where}.{key}: expected a number, got {value!r}")
            if isinstance(default, int) and not isinstance(default, bool) and value != int(value):
                raise ConfigError(source, f"{where}.{key}: expected a whole number, got {value!r}")
            value = type(default)(value)
            if value < 0:
                raise ConfigError(source, f"{where}.{key}: must be >= 0, got {value!r}")
        elif isinstance(default, tuple):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(source, f"{where}.{key}: expected a list of names, got {value!r}")
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def _parse_generator(i: int, data: Any, source: str, check_params: bool) -> GeneratorSpec:
    where = f"generators[{i}]"
    if not isinstance(data, Mapping):
        raise ConfigError(source, f"{where}: expected a mapping with name, quota, params")
    _check_keys(data, ("name", "kind", "quota", "params"), where, source)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(source, f"{where}.name: required (a short label such as 'item_knn')")
    kind = data.get("kind", name)
    if kind not in KNOWN_GENERATORS:
        raise ConfigError(
            source,
            f"{where}: unknown generator {kind!r}; known: {', '.join(sorted(KNOWN_GENERATORS))}",
        )
    quota = data.get("quota", 50)
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 1:
        raise ConfigError(source, f"{where}.quota: expected a whole number >= 1, got {quota!r}")
    params = data.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(source, f"{where}.params: expected a mapping")
    spec = GeneratorSpec(name=name, kind=kind, quota=quota, params=dict(params))
    if check_params:
        try:
            cls = spec.generator_class()
        except (ImportError, AttributeError):
            return spec  # not installed yet: checked again when the pipeline is built
        sig = inspect.signature(cls)
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        allowed = list(sig.parameters)
        for key in params:
            if not accepts_any and key not in allowed:
                raise ConfigError(
                    source,
                    f"{where}.params: {kind} has no parameter {key!r}; allowed: {', '.join(allowed)}",
                )
    return spec


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
    top = (
        "version", "feature_set", "candidates", "ranker", "diversity", "style", "training",
    )
    _check_keys(data, top, "top level", source)
    version = data.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError(source, f"version {version!r} is not supported (expected {CONFIG_VERSION})")
    feature_set = data.get("feature_set", "basket_completion")
    if not isinstance(feature_set, str):
        raise ConfigError(source, "feature_set: expected a name")
    cand = data.get("candidates") or {}
    if not isinstance(cand, Mapping):
        raise ConfigError(source, "candidates: expected a mapping")
    _check_keys(cand, ("total", "generators"), "candidates", source)
    raw_gens = cand.get("generators") or []
    if not isinstance(raw_gens, list):
        raise ConfigError(source, "candidates.generators: expected a list")
    gens = tuple(_parse_generator(i, g, source, check_params) for i, g in enumerate(raw_gens))
    names = [g.name for g in gens]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(source, f"candidates.generators: duplicate name(s) {sorted(dup)}")
    total = cand.get("total", 200)
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ConfigError(source, f"candidates.total: expected a whole number >= 1, got {total!r}")
    ranker = _dataclass_from(RankerConfig, data.get("ranker"), "ranker", source)
    div = data.get("diversity") or {}
    if not isinstance(div, Mapping):
        raise ConfigError(source, "diversity: expected a mapping")
    _check_keys(div, ("max_per_category", "style_slots"), "diversity", source)
    max_per_cat = div.get("max_per_category", 3)
    if isinstance(max_per_cat, bool) or not isinstance(max_per_cat, int) or max_per_cat < 0:
        raise ConfigError(source, "diversity.max_per_category: expected a whole number >= 0 (0 = off)")
    style_slots = div.get("style_slots", 0)
    if isinstance(style_slots, bool) or not isinstance(style_slots, int) or style_slots < 0:
        raise ConfigError(source, "diversity.style_slots: expected a whole number >= 0 (0 = off)")
    style = data.get("style") or {}
    if not isinstance(style, Mapping):
        raise ConfigError(source, "style: expected a mapping")
    _check_keys(style, ("enabled", "params", "styles"), "style", source)
    styles = style.get("styles")
    if styles is not None:
        taxonomy = taxonomy or load_taxonomy()
        if not isinstance(styles, list):
            raise ConfigError(source, "style.styles: expected a list of style slugs")
        for s in styles:
            if s not in taxonomy:
                raise ConfigError(
                    source, f"style.styles: unknown style {s!r}; known: {', '.join(taxonomy.slugs)}"
                )
        styles = tuple(styles)
    training = _dataclass_from(TrainingConfig, data.get("training"), "training", source)
    shares = (
        training.generator_share, training.ranker_share,
        training.validation_share, training.evaluation_share,
    )
    if any(s <= 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise ConfigError(source, f"training: the four *_share values must be > 0 and sum to 1, got {shares}")
    if not 0 < training.hide_fraction < 1:
        raise ConfigError(source, "training.hide_fraction: must be between 0 and 1")
    cfg = PipelineConfig(
        feature_set=feature_set,
        generators=gens,
        total_candidates=total,
        ranker=ranker,
        max_per_category=max_per_cat,
        style_slots=style_slots,
        style_enabled=bool(style.get("enabled", True)),
        style_params=dict(style.get("params") or {}),
        styles=styles,
        training=training,
    )
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
    return parse_pipeline_config(
        data, str(path), taxonomy=taxonomy, known_features=known_features
    )


def config_from_dict(data: Mapping[str, Any], source: str = "<bundle config>") -> PipelineConfig:
    """Rebuild a config written by ``PipelineConfig.to_dict`` (as stored in a bundle)."""
    d = dict(data)
    raw = {
        "version": d.get("version", CONFIG_VERSION),
        "feature_set": d.get("feature_set"),
        "candidates": {"total": d.get("total_candidates"), "generators": d.get("generators")},
        "ranker": d.get("ranker"),
        "diversity": {"max_per_category": d.get("max_per_category"), "style_slots": d.get("style_slots", 0)},
        "style": {
            "enabled": d.get("style_enabled", True),
            "params": d.get("style_params") or {},
            **({"styles": d["styles"]} if d.get("styles") is not None else {}),
        },
        "training": d.get("training"),
    }
    return parse_pipeline_config(raw, source, check_params=False)
