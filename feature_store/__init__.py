"""Features defined once and computed the same way offline and online, plus the event log and
online state serving keeps. ``load_recommender`` reads a model bundle with its features."""

from feature_store.assembler import StoreFeatureAssembler
from feature_store.definitions import FEATURE_SETS, FeatureDef, resolve_feature_set
from feature_store.loading import load_pipeline_config, load_recommender, validate_config_features
from feature_store.statistics import FeatureStatistics

__all__ = [
    "FEATURE_SETS",
    "FeatureDef",
    "FeatureStatistics",
    "StoreFeatureAssembler",
    "load_pipeline_config",
    "load_recommender",
    "resolve_feature_set",
    "validate_config_features",
]
