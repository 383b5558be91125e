"""Loading what the feature store owns together with the pipeline: a bundle with its feature
assembler injected, and pipeline configs validated against the feature definitions."""

from __future__ import annotations

from pathlib import Path

from feature_store.assembler import StoreFeatureAssembler
from feature_store.definitions import FEATURE_SETS, known_feature_names
from recsys.bundle import load_bundle
from recsys.config import ConfigError, PipelineConfig
from recsys.config import load_pipeline_config as _load_config
from recsys.data.taxonomy import StyleTaxonomy
from recsys.recommendation import AccessoryRules
from recsys.recommender import Recommender


def load_recommender(
    directory: Path | str, *, default_rules: AccessoryRules | None = None
) -> Recommender:
    """Read a bundle written by ``recsys.bundle.save_bundle``; ``recsys.bundle.BundleError``
    names the file when the bundle is of an unknown schema version, incomplete or corrupt."""
    return load_bundle(
        Path(directory), feature_loader=StoreFeatureAssembler.load, default_rules=default_rules
    )


def validate_config_features(config: PipelineConfig, source: str = "<config>") -> None:
    """Reject a config whose feature set or excluded features this code does not define."""
    if config.feature_set not in FEATURE_SETS:
        raise ConfigError(
            source,
            f"feature_set: unknown feature set {config.feature_set!r}; known: {', '.join(FEATURE_SETS)}",
        )
    config.validate_features(known_feature_names(config.generator_names), source)


def load_pipeline_config(
    path: Path | str | None = None, *, taxonomy: StyleTaxonomy | None = None
) -> PipelineConfig:
    """``recsys.config.load_pipeline_config`` plus the feature checks (what ``validate-config`` runs)."""
    cfg = _load_config(path, taxonomy=taxonomy)
    validate_config_features(cfg, str(path or "recsys/pipeline.yaml"))
    return cfg
