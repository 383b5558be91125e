"""The learned ranker: LightGBM lambdarank over (basket, candidate) feature rows.

A small model (about 100-200 trees of 31 leaves) keeps a 200-candidate request around a few
milliseconds with one thread (see experiments/reports/latency); the artifact is LightGBM's text
model plus a JSON side file, never pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np

MODEL_FILE = "ranker.txt"
META_FILE = "ranker.json"


class LightGBMRanker:
    """Lambdarank with early stopping on a later time window.

    Constructor stores hyperparameters only; ``fit`` learns ``booster_``, ``feature_names_``,
    ``best_iteration_`` and ``evals_`` (validation NDCG@10 per iteration)."""

    def __init__(
        self,
        n_estimators: int = 150,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        min_data_in_leaf: int = 20,
        feature_fraction: float = 0.9,
        early_stopping_rounds: int = 20,
        seed: int = 0,
        num_threads: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_seed": self.seed,
            "feature_fraction_seed": self.seed,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": self.num_threads,
            "verbosity": -1,
            "lambdarank_truncation_level": 20,
        }

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        group: np.ndarray,
        feature_names: tuple[str, ...],
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        group_val: np.ndarray | None = None,
    ) -> Self:
        """``X`` (n, f) float32, ``y`` (n,) 0/1 relevance, ``group`` (n_groups,) sizes of
        consecutive groups (one per basket) summing to n. The validation set, when given,
        drives early stopping."""
        if X.shape[0] != len(y) or int(np.sum(group)) != len(y):
            raise ValueError(
                f"ranker: X has {X.shape[0]} rows, y {len(y)}, groups sum to {int(np.sum(group))}"
            )
        if X.shape[1] != len(feature_names):
            raise ValueError(f"ranker: {X.shape[1]} columns but {len(feature_names)} feature names")
        if not np.any(y > 0):
            raise ValueError("ranker: no positive labels in the training examples")
        names = [n.replace(" ", "_") for n in feature_names]
        train = lgb.Dataset(X, label=y, group=group, feature_name=names, free_raw_data=True)
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        evals: dict[str, Any] = {}
        if X_val is not None and y_val is not None and group_val is not None and len(y_val):
            valid = lgb.Dataset(X_val, label=y_val, group=group_val, reference=train)
            valid_sets = [valid]
            callbacks = [
                lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                lgb.record_evaluation(evals),
            ]
        self.booster_ = lgb.train(
            self._params(),
            train,
            num_boost_round=self.n_estimators,
            valid_sets=valid_sets,
            valid_names=["validation"] if valid_sets else None,
            callbacks=callbacks,
        )
        self.feature_names_ = tuple(feature_names)
        self.best_iteration_ = int(
            self.booster_.best_iteration or self.booster_.current_iteration()
        )
        self.evals_ = [float(v) for v in evals.get("validation", {}).get("ndcg@10", [])]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n,) float64 scores for (n, f) rows; one thread (serving)."""
        if X.shape[1] != len(self.feature_names_):
            raise ValueError(
                f"ranker: expected {len(self.feature_names_)} features, got {X.shape[1]}"
            )
        if X.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(
            self.booster_.predict(
                X, num_iteration=self.best_iteration_, num_threads=1, validate_features=False
            ),
            dtype=np.float64,
        )

    def feature_importance(self) -> dict[str, float]:
        """Total gain per feature, largest first."""
        gain = self.booster_.feature_importance(
            importance_type="gain", iteration=self.best_iteration_
        )
        pairs = sorted(zip(self.feature_names_, gain, strict=True), key=lambda p: -p[1])
        return {n: float(g) for n, g in pairs}

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / MODEL_FILE), num_iteration=self.best_iteration_)
        meta = {
            "feature_names": list(self.feature_names_),
            "best_iteration": self.best_iteration_,
            "params": {
                k: getattr(self, k)
                for k in (
                    "n_estimators",
                    "num_leaves",
                    "learning_rate",
                    "min_data_in_leaf",
                    "feature_fraction",
                    "early_stopping_rounds",
                    "seed",
                    "num_threads",
                )
            },
            "validation_ndcg10": self.evals_,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        self = cls(**meta["params"])
        self.booster_ = lgb.Booster(model_file=str(directory / MODEL_FILE))
        self.feature_names_ = tuple(meta["feature_names"])
        self.best_iteration_ = int(self.booster_.current_iteration())
        self.evals_ = list(meta.get("validation_ndcg10", []))
        return self
