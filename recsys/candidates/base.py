"""The one interface every candidate generator honours (after implicit's RecommenderBase).

Batch-first: ``generate`` takes many queries and returns dense ``(n_queries, k)`` arrays of
catalog rows and scores, padded with ``-1`` / ``-inf`` where a generator has fewer than ``k``.
Generators work on catalog rows; SKUs exist only at the edges (``recsys.ids.IdIndex``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from recsys.engine.aggregates import EngineWindow, ItemPopularity, OrderAggregates
from recsys.engine.inprocess import aggregate_orders, popularity_of_orders

PAD_ROW = -1


@dataclass(frozen=True)
class CandidateQuery:
    """One basket as the generators see it."""

    rows: np.ndarray  # (m,) int64 catalog rows of the basket's known items
    quantities: np.ndarray | None = None  # (m,) int64, None = all 1
    user_row: int = -1  # row in the training user index, -1 = guest / unknown user
    style: np.ndarray | None = None  # (n_styles,) basket style distribution, None = unknown
    exclude: np.ndarray = field(
        default_factory=lambda: np.empty(0, np.int64)
    )  # rows never returned


@dataclass(frozen=True)
class TrainingData:
    """What generators learn from, built once per training from the training window only.

    ``orders`` is (n_orders, n_items) CSR of purchased quantities (1 per line is fine);
    ``order_users`` maps each order to a user row (-1 guest); ``order_ts`` are int64 epoch seconds;
    ``item_category`` is the catalog's category code per item (-1 none); ``item_styles`` the
    (n_items, n_styles) style matrix from the style model, None when no style model exists.
    ``aggregates`` are the co-occurrence counts of ``orders`` when an ``AggregationEngine``
    computed them elsewhere (Spark); ``engine_window`` the engine and window of ``orders``,
    asked for the aggregates (and popularity) the generators need; with neither, they are
    computed in process on first use.
    """

    orders: sp.csr_matrix
    order_users: np.ndarray
    order_ts: np.ndarray
    n_users: int
    item_category: np.ndarray
    in_stock: np.ndarray
    item_styles: np.ndarray | None = None
    category_tag_share: np.ndarray | None = None  # (n_cat,) from Catalog.category_tag_share
    aggregates: OrderAggregates | None = None
    engine_window: EngineWindow | None = None

    @property
    def n_items(self) -> int:
        return int(self.orders.shape[1])

    def order_aggregates(self) -> OrderAggregates:
        """The orders' co-occurrence counts: the engine's when given, else computed once here
        (every generator that needs them shares one computation)."""
        if self.aggregates is None:
            # memoised on the frozen record: the value is a pure function of its fields
            computed = (
                self.engine_window.order_aggregates()
                if self.engine_window is not None
                else aggregate_orders(self.orders, np.asarray(self.item_category))
            )
            object.__setattr__(self, "aggregates", computed)
        agg = self.aggregates
        assert agg is not None
        if agg.n_items != self.n_items:
            raise ValueError(
                f"TrainingData: aggregates cover {agg.n_items} items, orders {self.n_items}; "
                "compute them with the same catalog"
            )
        return agg

    def item_popularity(self, windows: Sequence[int], half_life_days: float) -> ItemPopularity:
        """Per-item popularity of the orders: the engine's when given, else in process."""
        if self.engine_window is not None:
            pop = self.engine_window.item_popularity(windows, half_life_days)
        else:
            pop = popularity_of_orders(self.orders, self.order_ts, windows, half_life_days)
        if pop.counts.shape[1] != self.n_items:
            raise ValueError(
                f"TrainingData: popularity covers {pop.counts.shape[1]} items, orders "
                f"{self.n_items}; compute it with the same catalog"
            )
        return pop


class CandidateGenerator(ABC):
    """Constructors store hyperparameters only; ``fit`` learns state ending in ``_``."""

    name: str = "base"
    # Declared, not discovered: the constructor takes ``seed`` (the pipeline passes its seed
    # unless the config sets one) ...
    seeded: ClassVar[bool] = False
    # ... and ``fit`` keyword -> (generator class, fitted attribute): when the pipeline has
    # fitted a generator of that class before this one, its attribute is passed to ``fit``.
    fit_inputs: ClassVar[Mapping[str, tuple[type[CandidateGenerator], str]]] = {}

    @abstractmethod
    def fit(self, data: TrainingData) -> Self: ...

    @abstractmethod
    def generate(self, queries: Sequence[CandidateQuery], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (rows, scores), each (len(queries), k): rows int64 padded with PAD_ROW,
        scores float32 padded with -inf, best first, never containing a query's basket rows or
        its ``exclude`` rows."""

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write plain files (.npz with allow_pickle=False, JSON, faiss index) into ``directory``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Self: ...
