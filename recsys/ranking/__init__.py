"""Ranking: the LightGBM lambdarank model, the feature-assembler interface it consumes, and
the diversity step applied after scoring."""

from recsys.ranking.diversity import cap_per_category
from recsys.ranking.features import CandidateBatch, FeatureAssembler
from recsys.ranking.ranker import LightGBMRanker

__all__ = ["CandidateBatch", "FeatureAssembler", "LightGBMRanker", "cap_per_category"]
