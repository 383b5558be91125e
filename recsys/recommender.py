"""The pipeline that turns baskets into ranked lists, as public steps that every caller runs:
the API, batch scoring, the MLflow pyfunc, rule preview, offline evaluation and the promotion
gate. A figure measured offline is therefore the figure of the list a shopper gets.

    prepare      baskets -> rows, style reading, user affinity        (``PreparedBasket``)
    candidates   every generator, merged by ``CandidateMerger``         (``MergedBatch``)
    features     the feature store's columns for every candidate        (``CandidateBatch``, X)
    rank         LightGBM scores, or None (ranker off / latency budget)
    accessories  one section of forgotten-accessory slots from the rules (cart, checkout)
    select       merchandiser controls (pin, boost, bury, hide), items that do not repeat an
                 accessory, category cap and "complete the look" slots -> top-k positions
    explain      items with sources and a human reason -> ``Recommendation``

``recommend_batch`` composes them; ``recommend`` is a batch of one. Features are computed by an
injected ``FeatureAssembler`` (``feature_store`` builds it when it loads a bundle) so this
library never imports the layers above it. Bundles are written and read by ``recsys.bundle``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.candidates.base import CandidateGenerator, CandidateQuery
from recsys.candidates.merger import CandidateMerger, MergedBatch, MergedCandidates
from recsys.candidates.pair_scores import (
    SMALL_PAIR_BATCH,
    BasketScores,
    PairScorer,
    top_k_of,
)
from recsys.candidates.style_retrieval import look_categories
from recsys.candidates.topk import not_in
from recsys.config import PipelineConfig
from recsys.controls import AppliedControl, apply_controls
from recsys.data.catalog import Catalog
from recsys.ids import IdIndex
from recsys.ranking.diversity import cap_per_category, reserve_slots
from recsys.ranking.features import CandidateBatch, FeatureAssembler
from recsys.ranking.ranker import LightGBMRanker
from recsys.recommendation import (
    NO_STYLE,
    AccessoryRules,
    AccessorySlot,
    BasketLine,
    Filters,
    Recommendation,
    RecommendationRequest,
    RecommendedItem,
    StyleReading,
)
from recsys.rules.slots import fill_accessory_slots, not_shown

if TYPE_CHECKING:
    from recsys.rules.mining import Suggestion
    from recsys.style.item_model import ItemStyleModel

log = logging.getLogger(__name__)

DEGRADED_LATENCY = "ranker skipped: latency budget"
POPULAR_WINDOW_DAYS = 30


@dataclass(frozen=True)
class PipelineKnobs:
    """Per-call switches of the served pipeline (an experiment variant, an ablation, a
    preview). ``None`` keeps the pipeline config's value."""

    ranker: bool = True
    max_per_category: int | None = None
    style_slots: int | None = None


DEFAULT_KNOBS = PipelineKnobs()


@dataclass
class PreparedBasket:
    """One request mapped to catalog rows: the first pipeline step's output."""

    request: RecommendationRequest
    rows: np.ndarray  # (m,) distinct known basket rows
    qty: np.ndarray  # (m,)
    unknown: tuple[str, ...]
    exclude: np.ndarray  # basket + exclude_skus rows
    query_rows: np.ndarray  # rows used to query generators (basket, or recent items if empty)
    query_qty: np.ndarray
    user_row: int
    now: int
    reading: StyleReading = NO_STYLE
    style_vec: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n_styles,)
    affinity: np.ndarray = field(
        default_factory=lambda: np.zeros(0, np.float32)
    )  # (n_styles,), NaN = unknown

    def query(self) -> CandidateQuery:
        """How the candidate generators see this basket."""
        return CandidateQuery(
            rows=self.query_rows,
            quantities=self.query_qty,
            user_row=self.user_row,
            style=self.style_vec if self.reading.top is not None else None,
            exclude=self.exclude,
        )


@dataclass
class _RankerCost:
    """Running estimate of the ranker's cost for one request (ms): the only state that changes
    while serving; it decides whether the ranker fits the request's deadline."""

    ms: float = 3.0

    def update(self, seconds: float) -> None:
        self.ms = 0.8 * self.ms + 0.2 * seconds * 1000


def _epoch(dt: datetime | None, default: int) -> int:
    if dt is None:
        return default
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


class Recommender:
    """A fitted pipeline, immutable once built (``replace`` makes a changed copy that shares
    the fitted parts), so one object serves concurrent requests. Build it with
    ``training.fit.fit_recommender`` or load a bundle with ``feature_store.load_recommender``."""

    def __init__(
        self,
        catalog: Catalog,
        config: PipelineConfig,
        generators: Sequence[CandidateGenerator],
        features: FeatureAssembler | None = None,
        ranker: LightGBMRanker | None = None,
        style_model: ItemStyleModel | None = None,
        user_index: IdIndex | None = None,
        user_affinity: np.ndarray | None = None,
        reference_ts: int | None = None,
        default_rules: AccessoryRules | None = None,
        manifest: dict[str, Any] | None = None,
        mined_suggestions: Sequence[Suggestion] | None = None,
        knobs: PipelineKnobs = DEFAULT_KNOBS,
    ) -> None:
        self.catalog = catalog
        self.config = config
        self.generators: tuple[CandidateGenerator, ...] = tuple(generators)
        self.source_names = tuple(g.name for g in self.generators)
        self.merger = CandidateMerger(
            {s.name: s.quota for s in config.generators if s.name in self.source_names},
            config.total_candidates,
        )
        self.features = features
        self.ranker = ranker
        self.style_model = style_model
        self.user_index = user_index or IdIndex([])
        n_styles = len(catalog.taxonomy)
        self.user_affinity = (
            user_affinity if user_affinity is not None else np.zeros((0, n_styles), np.float32)
        )
        self.reference_ts = int(reference_ts if reference_ts is not None else time.time())
        self.default_rules = default_rules
        self.manifest: dict[str, Any] = dict(manifest or {})
        self.mined_suggestions: tuple[Suggestion, ...] | None = (
            tuple(mined_suggestions) if mined_suggestions is not None else None
        )
        self.knobs = knobs
        self._inferer = None
        self.item_styles: np.ndarray | None = None
        self.informativeness: np.ndarray | None = None
        if style_model is not None:
            from recsys.style.basket import BasketStyleInferer

            self._inferer = BasketStyleInferer.from_model(style_model, catalog)
            self.item_styles = np.asarray(style_model.item_styles_, dtype=np.float32)
            self.informativeness = np.asarray(style_model.informativeness_, dtype=np.float32)
        self._prices = catalog.prices
        self._in_stock = catalog.in_stock
        self._categories = catalog.category_codes
        look = (
            look_categories(catalog.category_tag_share())
            if catalog.has_categories
            else np.zeros(0, bool)
        )
        # categories that make a look (furniture, lighting, decor): the "complete the look" slots
        self._look_category = look if look.any() else np.ones(len(catalog.categories), bool)
        self._titles = catalog.frame["title"].to_numpy(object)
        self._cat_names = catalog.frame["category"].to_numpy(object)
        self._style_labels = {
            slug: catalog.taxonomy.name(slug).split("/")[0].strip().lower()
            for slug in catalog.taxonomy.slugs
        }
        self._popular_scores = self._popularity_scores()
        # accessory scoring's popularity term, in [0, 1]: catalog-sized, so computed once
        self._popular_norm = np.log1p(self._popular_scores) / max(
            float(np.log1p(self._popular_scores.max(initial=0.0))), 1e-9
        )
        # generators that score any (basket, item) pair, found once (a runtime Protocol check
        # per generator per request cost more than some generators' own work)
        self._pair_scorers = tuple(
            j for j, g in enumerate(self.generators) if isinstance(g, PairScorer)
        )
        self._ranker_cost = _RankerCost()

    _FIELDS = (
        "catalog",
        "config",
        "generators",
        "features",
        "ranker",
        "style_model",
        "user_index",
        "user_affinity",
        "reference_ts",
        "default_rules",
        "manifest",
        "mined_suggestions",
        "knobs",
    )

    def replace(self, **changes: Any) -> Recommender:
        """A copy with some parts changed (e.g. ``ranker=``, ``knobs=``, ``manifest=``); the
        rest is shared, not copied."""
        unknown = set(changes) - set(self._FIELDS)
        if unknown:
            raise TypeError(f"Recommender.replace: unknown field(s) {sorted(unknown)}")
        args = {name: getattr(self, name) for name in self._FIELDS}
        args.update(changes)
        return Recommender(**args)

    # --- identity ------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or f"unsaved-{self.config.hash[:8]}")

    def save(
        self,
        directory: Path | str,
        *,
        run_id: str | None = None,
        metrics: dict[str, float] | None = None,
    ) -> Path:
        """Write the bundle (``recsys.bundle.save_bundle``) and return its directory."""
        from recsys.bundle import save_bundle

        return save_bundle(self, directory, run_id=run_id, metrics=metrics)

    # --- public API ----------------------------------------------------------------------

    def recommend(
        self,
        request: RecommendationRequest,
        *,
        rules: AccessoryRules | None = None,
        deadline: float | None = None,
        knobs: PipelineKnobs | None = None,
    ) -> Recommendation:
        """One request. ``deadline`` is an absolute ``time.perf_counter()`` value: if the ranker
        cannot finish before it, answer from the merged candidate order, ``degraded=True``."""
        return self._run([request], rules=rules, deadline=deadline, knobs=knobs)[0]

    def recommend_batch(
        self,
        requests: Sequence[RecommendationRequest],
        *,
        rules: AccessoryRules | None = None,
        knobs: PipelineKnobs | None = None,
        chunk_size: int = 512,
    ) -> list[Recommendation]:
        """Many requests, vectorised per chunk (generators, features and ranker run once per chunk)."""
        out: list[Recommendation] = []
        for i in range(0, len(requests), chunk_size):
            out.extend(
                self._run(
                    list(requests[i : i + chunk_size]), rules=rules, deadline=None, knobs=knobs
                )
            )
        return out

    def infer_style(self, basket: Sequence[BasketLine]) -> tuple[StyleReading, list[str]]:
        """The basket's style reading and the SKUs not in the catalog."""
        rows, qty, unknown = self._map_basket(basket)
        return self._read_style(rows, qty), unknown

    def product_recommendations(self, sku: str, k: int = 10) -> Recommendation:
        """Product page: items that complete the look of ``sku`` and are bought with it."""
        req = RecommendationRequest(basket=(BasketLine(sku, 1),), page="product", k=k)
        return self.recommend(req)

    def popular(
        self, k: int, category: str | None = None, *, in_stock: bool = True
    ) -> list[RecommendedItem]:
        """Most bought items in the last 30 days before the model's reference time."""
        scores = self._popular_scores
        mask = self._in_stock.copy() if in_stock else np.ones(len(scores), bool)
        if category is not None:
            if category not in self.catalog.categories:
                return []
            mask &= self._categories == self.catalog.categories.index(category)
        rows = np.nonzero(mask)[0]
        top = rows[np.argsort(-scores[rows], kind="stable")[:k]]
        reason = f"popular in {category}" if category else "popular right now"
        return [
            RecommendedItem(str(self.catalog.skus[r]), float(scores[r]), ("popular",), reason)
            for r in top
        ]

    def candidate_features(
        self, request: RecommendationRequest
    ) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
        """The online feature rows of one request: candidate rows (m,), feature names and the
        (m, n_features) matrix the ranker scores (for parity checks and debugging)."""
        if self.features is None:
            raise ValueError("this recommender has no feature assembler")
        prepared = self.prepare([request])
        merged = self.candidates(prepared)
        _, X = self.feature_matrix(prepared, merged)
        return merged.rows, tuple(self.features.feature_names), X

    # --- pipeline steps --------------------------------------------------------------------

    def prepare(self, requests: Sequence[RecommendationRequest]) -> list[PreparedBasket]:
        """Step 1: map SKUs to rows, read the basket's style, look up the shopper's affinity."""
        return [self._prepare_one(r) for r in requests]

    def candidates(self, prepared: Sequence[PreparedBasket]) -> MergedBatch:
        """Step 2: every generator on the batch, merged per basket (quotas, dedupe, filters);
        a basket left with no candidate gets the popular items its filters allow. On a few
        baskets, a ``PairScorer``'s whole score row of each basket is kept with the merge, so
        that its opinion of other sources' candidates (step 3) costs a lookup."""
        queries = [p.query() for p in prepared]
        outputs = {}
        rows_of: dict[str, Sequence[BasketScores]] = {}
        small = len(queries) <= SMALL_PAIR_BATCH
        for j, g in enumerate(self.generators):
            quota = self.merger.quotas.get(g.name, 50)
            try:
                if small and j in self._pair_scorers:
                    scorer: PairScorer = g  # type: ignore[assignment]
                    rows_of[g.name] = [scorer.basket_scores(q) for q in queries]
                    rows, scores = top_k_of(rows_of[g.name], queries, quota)
                else:
                    rows, scores = g.generate(queries, quota)
            except Exception:  # a broken source must not take the request down
                log.exception("generator %s failed; continuing without it", g.name)
                rows_of.pop(g.name, None)
                rows = np.full((len(queries), quota), -1, np.int64)
                scores = np.full((len(queries), quota), -np.inf, np.float32)
            outputs[g.name] = (np.asarray(rows, np.int64), np.asarray(scores, np.float32))
        masks = self._filter_masks(prepared)
        merged = self.merger.merge(queries, outputs, masks)
        empty = np.flatnonzero(merged.sizes() == 0)
        if len(empty):
            n_src = len(self.source_names)
            per_query = list(merged)
            for q in empty.tolist():
                cand = self._fallback_popular(
                    prepared[q].exclude, masks[q], self.config.total_candidates
                )
                nan = np.full((len(cand), n_src), np.nan, np.float32)
                per_query[q] = MergedCandidates(cand, nan, nan.copy(), self.source_names)
            merged = MergedBatch.from_lists(per_query, self.source_names)
        return replace(merged, basket_scores=rows_of) if rows_of else merged

    def feature_matrix(
        self, prepared: Sequence[PreparedBasket], merged: MergedBatch
    ) -> tuple[CandidateBatch, np.ndarray]:
        """Step 3: the feature store's input for these baskets and the (M, n_features) matrix."""
        if self.features is None:
            raise ValueError("this recommender has no feature assembler")
        batch = self.candidate_batch(prepared, merged)
        return batch, self.features.compute(batch)

    def rank(self, X: np.ndarray) -> np.ndarray:
        """Step 4: ranker scores (M,) for the feature matrix."""
        if self.ranker is None:
            raise ValueError("this recommender has no ranker")
        return self.ranker.predict(X)

    def uses_ranker(self, knobs: PipelineKnobs | None = None) -> bool:
        """Whether lists are ordered by the ranker (else: merged candidate order)."""
        knobs = knobs or self.knobs
        return (
            self.ranker is not None
            and self.features is not None
            and self.config.ranker.enabled
            and knobs.ranker
        )

    def accessories(
        self, prepared: PreparedBasket, rules: AccessoryRules | None
    ) -> tuple[AccessorySlot, ...]:
        """Step 5: one section of forgotten-accessory slots (cart and checkout pages) for the
        fired rules: one per suggested category, then second choices of the categories shown in
        lines left free, at most ``request.accessory_slots``. Chosen
        before the items so that the items can leave them their SKUs and categories."""
        if (
            rules is None
            or prepared.request.page not in ("cart", "checkout")
            or not len(prepared.rows)
        ):
            return ()
        return self._accessories(prepared, rules)

    def select(
        self,
        prepared: PreparedBasket,
        cands: MergedCandidates,
        scores: np.ndarray | None,
        knobs: PipelineKnobs | None = None,
        accessories: Sequence[AccessorySlot] = (),
    ) -> tuple[np.ndarray, np.ndarray, list[AppliedControl]]:
        """Step 6: the top-k candidate positions (best first) after the request's merchandiser
        controls, without the accessories' SKUs and categories, under the category cap and the
        "complete the look" slots; the score of every candidate (merged order when ``scores``
        is None, as the controls adjusted them) and the controls that applied."""
        knobs = knobs or self.knobs
        n = len(cands.rows)
        s = (
            np.asarray(scores)
            if scores is not None
            else 1.0 / (1.0 + np.arange(n, dtype=np.float64))
        )
        req = prepared.request
        order, s, applied = apply_controls(cands.rows, s, req.controls, page=req.page, now=req.now)
        if accessories:
            shown = [self.catalog.ids.row(a.sku) for a in accessories]
            order = order[not_shown(cands.rows[order], self._categories, shown)]
        k = max(int(req.k), 0)
        cats = self._categories[cands.rows]
        cap = (
            self.config.max_per_category
            if knobs.max_per_category is None
            else knobs.max_per_category
        )
        picked = cap_per_category(order, cats, k, cap)
        slots = self.config.style_slots if knobs.style_slots is None else knobs.style_slots
        if slots and self._look_to_complete(prepared):
            picked = reserve_slots(
                picked, order, self._completes_look(prepared, cands.rows), cats, slots
            )
        return picked, s, applied

    def explain(
        self,
        prepared: PreparedBasket,
        cands: MergedCandidates,
        picked: np.ndarray,
        scores: np.ndarray,
    ) -> tuple[RecommendedItem, ...]:
        """Step 7: the picked items with their sources and a human reason."""
        return self._items(prepared, cands, picked, scores)

    def top_rows(
        self,
        requests: Sequence[RecommendationRequest],
        *,
        knobs: PipelineKnobs | None = None,
        rules: AccessoryRules | None = None,
    ) -> list[list[int]]:
        """Catalog rows of each served list (``recommend_batch``'s items, as rows): what
        offline evaluation scores."""
        ids = self.catalog.ids
        return [
            [ids.row(i.sku) for i in r.items]
            for r in self.recommend_batch(requests, rules=rules, knobs=knobs)
        ]

    # --- step internals --------------------------------------------------------------------

    def _map_basket(self, basket: Sequence[BasketLine]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        agg: dict[int, int] = {}
        unknown: list[str] = []
        for line in basket:
            r = self.catalog.ids.get(line.sku)
            if r < 0:
                unknown.append(line.sku)
            else:
                agg[r] = agg.get(r, 0) + max(int(line.quantity), 1)
        rows = np.fromiter(agg.keys(), np.int64, len(agg))
        qty = np.fromiter(agg.values(), np.int64, len(agg))
        return rows, qty, unknown

    def _read_style(self, rows: np.ndarray, qty: np.ndarray) -> StyleReading:
        if self._inferer is None or not len(rows):
            return NO_STYLE
        return self._inferer.infer(rows, qty)

    def _style_vector(self, reading: StyleReading) -> np.ndarray:
        slugs = self.catalog.taxonomy.slugs
        return np.array([reading.distribution.get(s, 0.0) for s in slugs], dtype=np.float32)

    def _prepare_one(self, request: RecommendationRequest) -> PreparedBasket:
        rows, qty, unknown = self._map_basket(request.basket)
        excl, _ = self.catalog.ids.rows(list(request.exclude_skus))
        exclude = np.union1d(rows, excl).astype(np.int64)
        query_rows, query_qty = rows, qty
        ctx = request.user_context
        if not len(rows) and ctx is not None and ctx.recent_skus:
            recent, _ = self.catalog.ids.rows(list(dict.fromkeys(ctx.recent_skus)))
            query_rows, query_qty = recent, np.ones(len(recent), np.int64)
        user_row = self.user_index.get(request.user_id, -1) if request.user_id else -1
        p = PreparedBasket(
            request,
            rows,
            qty,
            tuple(unknown),
            exclude,
            query_rows,
            query_qty,
            user_row,
            _epoch(request.now, self.reference_ts),
        )
        p.reading = self._read_style(query_rows, query_qty)
        p.style_vec = self._style_vector(p.reading)
        n_styles = len(self.catalog.taxonomy)
        aff = np.full(n_styles, np.nan, np.float32)
        if ctx is not None and ctx.style_affinity:
            aff = np.array(
                [ctx.style_affinity.get(s, 0.0) for s in self.catalog.taxonomy.slugs], np.float32
            )
        elif 0 <= user_row < len(self.user_affinity):
            aff = self.user_affinity[user_row]
        p.affinity = aff
        return p

    def _filter_mask(self, filters: Filters) -> np.ndarray | None:
        """(n_items,) bool of items the filters allow; None = all allowed."""
        mask = None
        if filters.in_stock:
            mask = self._in_stock
        if filters.max_price is not None:
            m = self._prices <= filters.max_price
            mask = m if mask is None else (mask & m)
        if filters.categories is not None:
            codes = [
                self.catalog.categories.index(c)
                for c in filters.categories
                if c in self.catalog.categories
            ]
            m = np.isin(self._categories, codes)
            mask = m if mask is None else (mask & m)
        return mask

    def _filter_masks(self, prepared: Sequence[PreparedBasket]) -> list[np.ndarray | None]:
        """One mask per basket; baskets with the same filters share the same array."""
        cache: dict[Filters, np.ndarray | None] = {}
        out = []
        for p in prepared:
            f = p.request.filters
            if f not in cache:
                cache[f] = self._filter_mask(f)
            out.append(cache[f])
        return out

    def _popularity_scores(self) -> np.ndarray:
        if self.features is None:
            return np.zeros(len(self.catalog), np.float64)
        recent = self.features.popularity(self.reference_ts, POPULAR_WINDOW_DAYS)
        longer = self.features.popularity(self.reference_ts, 365)
        return np.asarray(recent + 0.01 * longer, np.float64)

    def _fallback_popular(self, exclude: np.ndarray, mask: np.ndarray | None, n: int) -> np.ndarray:
        scores = self._popular_scores
        ok = np.ones(len(scores), bool) if mask is None else mask.copy()
        ok[exclude] = False
        rows = np.nonzero(ok)[0]
        return rows[np.argsort(-scores[rows], kind="stable")[:n]].astype(np.int64)

    def candidate_batch(
        self, prepared: Sequence[PreparedBasket], merged: MergedBatch
    ) -> CandidateBatch:
        """The feature store's input for these baskets and their candidates. A generator that
        can score any pair (``PairScorer``: EASE, RP3beta) gives its score for every candidate,
        not only those it proposed; ranks stay NaN where it did not propose the item."""
        n_styles = len(self.catalog.taxonomy)
        scores = merged.scores
        scorers = self._pair_scorers
        if scorers and len(merged.rows):
            scores = scores.copy()
            queries = [p.query() for p in prepared]
            query_of = np.repeat(np.arange(len(prepared)), merged.sizes())
            for j in scorers:
                missing = np.flatnonzero(np.isnan(scores[:, j]))
                if not missing.size:
                    continue
                gen: PairScorer = self.generators[j]  # type: ignore[assignment]
                kept = merged.basket_scores.get(self.generators[j].name)
                if kept is None:
                    scores[missing, j] = gen.score_pairs(
                        queries, query_of[missing], merged.rows[missing]
                    )
                    continue
                for q, row_scores in enumerate(kept):
                    at = missing[query_of[missing] == q] if len(kept) > 1 else missing
                    scores[at, j] = row_scores.at(merged.rows[at])
        return CandidateBatch(
            query_ptr=merged.query_ptr,
            cand_rows=merged.rows,
            source_scores=scores,
            source_ranks=merged.ranks,
            source_names=self.source_names,
            basket_rows=[p.query_rows for p in prepared],
            basket_qty=[p.query_qty for p in prepared],
            basket_style=np.stack([p.style_vec for p in prepared])
            if prepared
            else np.zeros((0, n_styles), np.float32),
            style_confidence=np.array([p.reading.confidence for p in prepared], np.float32),
            user_affinity=np.stack([p.affinity for p in prepared])
            if prepared
            else np.zeros((0, n_styles), np.float32),
            now=np.array([p.now for p in prepared], np.int64),
            user_rows=np.array([p.user_row for p in prepared], np.int64),
        )

    def _run(
        self,
        requests: Sequence[RecommendationRequest],
        *,
        rules: AccessoryRules | None,
        deadline: float | None,
        knobs: PipelineKnobs | None,
    ) -> list[Recommendation]:
        knobs = knobs or self.knobs
        t0 = time.perf_counter()
        prepared = self.prepare(requests)
        t1 = time.perf_counter()
        merged = self.candidates(prepared)
        t2 = time.perf_counter()
        scores = None
        degraded_reason = None
        t3 = t4 = t2
        if self.uses_ranker(knobs):
            if (
                deadline is not None
                and time.perf_counter() + self._ranker_cost.ms / 1000 > deadline
            ):
                degraded_reason = DEGRADED_LATENCY
            else:
                _, X = self.feature_matrix(prepared, merged)
                t3 = time.perf_counter()
                scores = self.rank(X)
                t4 = time.perf_counter()
                if len(requests) == 1:
                    self._ranker_cost.update(t4 - t2)
        out = []
        rules = rules if rules is not None else self.default_rules
        for qi, p in enumerate(prepared):
            cands = merged[qi]
            lo, hi = int(merged.query_ptr[qi]), int(merged.query_ptr[qi + 1])
            accessories = self.accessories(p, rules)
            picked, s, applied = self.select(
                p, cands, scores[lo:hi] if scores is not None else None, knobs, accessories
            )
            items = self.explain(p, cands, picked, s)
            out.append(
                Recommendation(
                    items=items,
                    style=p.reading,
                    accessories=accessories,
                    unknown_skus=p.unknown,
                    degraded=degraded_reason is not None,
                    degraded_reason=degraded_reason,
                    controls_applied=tuple(
                        (str(self.catalog.skus[a.row]), a.control_id, a.action) for a in applied
                    ),
                )
            )
        t5 = time.perf_counter()
        timings = {
            "prepare_style": (t1 - t0) * 1000,
            "candidates": (t2 - t1) * 1000,
            "features": (t3 - t2) * 1000,
            "ranker": (t4 - t3) * 1000,
            "assemble": (t5 - max(t4, t2)) * 1000,
            "total": (t5 - t0) * 1000,
        }
        if len(out) == 1:
            out[0].timings_ms.update({k: round(v, 3) for k, v in timings.items()})
        return out

    # --- presentation --------------------------------------------------------------------

    def _style_label(self, slug: str) -> str:
        return self._style_labels[slug]

    def _in_basket_style(self, rows: np.ndarray, top: str | None) -> np.ndarray:
        """(len(rows),) bool: the item's own style is the basket's top style (argmax, >= 0.4)."""
        if top is None or self.item_styles is None or not self.item_styles.shape[1]:
            return np.zeros(len(rows), bool)
        col = self.catalog.taxonomy.index(top)
        st = self.item_styles[rows]
        out: np.ndarray = (st.argmax(axis=1) == col) & (st[:, col] >= 0.4)
        return out

    def _look_to_complete(self, p: PreparedBasket) -> bool:
        """Whether the list reserves "complete the look" places: the basket reads as a style,
        and the shopper's own taste (the strongest style of their purchases, when known) does
        not contradict it. A reading the shopper's history contradicts is mostly wrong (on the
        sample world's validation baskets 40% right, against 98% when both agree), and places
        reserved for a wrong look fill the list with items of a style the order does not have."""
        top = p.reading.top
        if top is None:
            return False
        aff = p.affinity
        if not len(aff) or np.isnan(aff).all() or not np.nanmax(aff) > 0:
            return True  # guest or unknown taste: the basket alone decides
        return bool(self.catalog.taxonomy.slugs[int(np.nanargmax(aff))] == top)

    def _completes_look(self, p: PreparedBasket, rows: np.ndarray) -> np.ndarray:
        """Candidates that complete the basket's look: in its style, from a look-defining
        category (furniture, lighting, decor) the basket does not hold yet."""
        basket_cats = self._categories[p.rows]
        cats = self._categories[rows]
        new_category = not_in(cats, basket_cats[basket_cats >= 0])
        look = np.zeros(len(rows), bool)
        known = cats >= 0
        look[known] = self._look_category[cats[known]]
        out: np.ndarray = self._in_basket_style(rows, p.reading.top) & new_category & look
        return out

    def _items(
        self, p: PreparedBasket, m: MergedCandidates, picked: np.ndarray, scores: np.ndarray
    ) -> tuple[RecommendedItem, ...]:
        rows = m.rows[picked]
        if not len(rows):
            return ()
        partners = (
            self.features.strongest_partner(p.query_rows, rows)
            if self.features is not None and len(p.query_rows)
            else np.full(len(rows), -1)
        )
        top = p.reading.top
        styled = self._completes_look(p, rows)
        listed = ~np.isnan(m.scores[picked])
        names = self.source_names
        items = []
        for j, pos in enumerate(picked):
            r = int(rows[j])
            srcs = tuple(names[g] for g in np.flatnonzero(listed[j])) or ("popular",)
            if styled[j]:
                reason = f"completes a {self._style_label(top)} look"  # type: ignore[arg-type]
            else:
                reason = self._reason(r, srcs, int(partners[j]))
            items.append(
                RecommendedItem(str(self.catalog.skus[r]), float(scores[pos]), srcs, reason)
            )
        return tuple(items)

    def _reason(self, row: int, sources: tuple[str, ...], partner: int) -> str:
        if partner >= 0:
            return f"often bought with {str(self._titles[partner]).lower()}"
        if "item_knn" in sources or "cf" in sources:
            return "bought by shoppers with similar baskets"
        cat = self._cat_names[row]
        return f"popular in {cat.replace('-', ' ')}" if cat else "popular right now"

    def _accessories(self, p: PreparedBasket, rules: AccessoryRules) -> tuple[AccessorySlot, ...]:
        try:
            fired = rules.match(
                p.rows.tolist(), p.qty.tolist(), p.reading, p.request.page, p.request.now
            )
        except Exception:  # rules must never break a recommendation
            log.exception("rules engine failed; answering without accessories")
            return ()
        pop_n = self._popular_norm

        def score(cand: np.ndarray) -> np.ndarray:
            s = pop_n[cand].astype(np.float64) + 0.2 * self._in_stock[cand]
            if self.item_styles is not None and p.reading.top is not None:
                s += 2.0 * (self.item_styles[cand] @ p.style_vec)
            out: np.ndarray = s
            return out

        slots = fill_accessory_slots(
            fired,
            self.catalog.category_codes,
            cap=p.request.accessory_slots,
            taken_rows=p.exclude.tolist(),
            allowed=self._filter_mask(p.request.filters),
            score=score,
        )
        return tuple(
            AccessorySlot(str(self.catalog.skus[s.row]), s.rule_id, s.reason, tuple(s.rule_ids))
            for s in slots
        )
