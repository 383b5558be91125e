"""The feature store's implementation of ``recsys.ranking.FeatureAssembler``: the same
definitions (``feature_store.definitions``) over the same statistics, offline and online."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np

from feature_store.definitions import FEATURE_SETS, FeatureContext, FeatureDef, resolve_feature_set
from feature_store.statistics import FeatureStatistics
from recsys.ranking.features import CandidateBatch

SET_FILE = "feature_set.json"


class StoreFeatureAssembler:
    """Computes a feature set's columns for a ``CandidateBatch``."""

    def __init__(
        self,
        stats: FeatureStatistics,
        feature_set: str,
        source_names: tuple[str, ...],
        cf_sources: frozenset[str] = frozenset(),
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.stats = stats
        self.feature_set = feature_set
        self.version = FEATURE_SETS[feature_set]
        self.source_names = tuple(source_names)
        self.cf_sources = frozenset(cf_sources)
        self.exclude = tuple(exclude)
        self.definitions: tuple[FeatureDef, ...] = resolve_feature_set(
            feature_set, self.source_names, self.cf_sources, self.exclude
        )
        self.feature_names = tuple(d.name for d in self.definitions)

    def compute(self, batch: CandidateBatch) -> np.ndarray:
        """(n, n_features) float32 in ``feature_names`` order."""
        if batch.source_names != self.source_names:
            raise ValueError(
                f"feature set built for sources {self.source_names}, batch has {batch.source_names}"
            )
        ctx = FeatureContext(batch, self.stats)
        out = np.empty((len(batch.cand_rows), len(self.definitions)), dtype=np.float32)
        for j, d in enumerate(self.definitions):
            out[:, j] = d.compute(ctx)
        return out

    def with_exclusions(self, exclude: tuple[str, ...]) -> StoreFeatureAssembler:
        """The same store with some features or groups dropped (ablations)."""
        return StoreFeatureAssembler(
            self.stats,
            self.feature_set,
            self.source_names,
            self.cf_sources,
            tuple(self.exclude) + tuple(exclude),
        )

    def strongest_partner(self, basket_rows: np.ndarray, cand_rows: np.ndarray) -> np.ndarray:
        basket = np.unique(np.asarray(basket_rows, np.int64))
        cand = np.asarray(cand_rows, np.int64)
        if not len(basket) or not len(cand):
            return np.full(len(cand), -1, np.int64)
        a = np.tile(basket, len(cand))
        b = np.repeat(cand, len(basket))
        lift, _ = self.stats.pair_values(a, b)
        lift = lift.reshape(len(cand), len(basket))
        best = lift.argmax(axis=1)
        return np.where(lift.max(axis=1) > 0, basket[best], -1)

    def popularity(self, now: int, window_days: int) -> np.ndarray:
        rows = np.arange(self.stats.n_items_, dtype=np.int64)
        n = len(rows)
        return self.stats.purchases_between(
            rows, np.full(n, now - window_days * 86_400), np.full(n, now)
        )

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        self.stats.save(directory)
        meta = {
            "feature_set": self.feature_set,
            "version": self.version,
            "source_names": list(self.source_names),
            "cf_sources": sorted(self.cf_sources),
            "exclude": list(self.exclude),
            "feature_names": list(self.feature_names),
        }
        (directory / SET_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        meta = json.loads((directory / SET_FILE).read_text())
        if meta["feature_set"] not in FEATURE_SETS:
            raise ValueError(f"unknown feature set {meta['feature_set']!r}")
        if FEATURE_SETS[meta["feature_set"]] != meta["version"]:
            raise ValueError(
                f"feature set {meta['feature_set']} version {meta['version']} was saved, this code "
                f"defines version {FEATURE_SETS[meta['feature_set']]}"
            )
        self = cls(
            FeatureStatistics.load(directory),
            meta["feature_set"],
            tuple(meta["source_names"]),
            frozenset(meta["cf_sources"]),
            tuple(meta["exclude"]),
        )
        if list(self.feature_names) != meta["feature_names"]:
            raise ValueError("feature names in the bundle differ from this code's feature set")
        return self
