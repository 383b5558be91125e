"""The pipeline that turns a basket into a ranked list: basket style -> candidate generators ->
merger (quotas, dedupe, exclusions, filters) -> features -> LightGBM ranker -> diversity ->
accessory slots from the rules. One object, batch-first (``recommend`` is a batch of one).

Features are computed by an injected ``FeatureAssembler`` (``feature_store`` builds it when it
loads a bundle) so this library never imports the layers above it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsys.bundle import (
    SCHEMA_VERSION,
    BundleError,
    code_version,
    load_catalog,
    load_component,
    now_iso,
    read_manifest,
    require,
    save_catalog,
    write_manifest,
)
from recsys.candidates.base import CandidateGenerator, CandidateQuery
from recsys.candidates.style_retrieval import look_categories
from recsys.config import PipelineConfig, config_from_dict
from recsys.controls import apply_controls
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

log = logging.getLogger(__name__)

DEGRADED_LATENCY = "ranker skipped: latency budget"
MINED_RULES = "mined_rules.json"  # serving reads the same file for the merchandiser page
POPULAR_WINDOW_DAYS = 30


@dataclass
class MergedCandidates:
    """Candidates of one basket after merging: ``rows`` (m,) in merged order (best first by
    each source's relative rank), ``scores`` / ``ranks`` (m, n_sources) NaN where absent."""

    rows: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray


@dataclass
class _Prepared:
    """One request, mapped to rows."""

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
    affinity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (n_styles,), NaN = unknown


def _epoch(dt: datetime | None, default: int) -> int:
    if dt is None:
        return default
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())


class Recommender:
    """A fitted pipeline. Build it with ``training.fit.fit_recommender`` or load a bundle with
    ``feature_store.load_recommender``; everything is read-only after construction, so one
    object can serve concurrent requests."""

    def __init__(
        self,
        catalog: Catalog,
        config: PipelineConfig,
        generators: Sequence[CandidateGenerator],
        features: FeatureAssembler | None = None,
        ranker: LightGBMRanker | None = None,
        style_model: Any | None = None,
        user_index: IdIndex | None = None,
        user_affinity: np.ndarray | None = None,
        reference_ts: int | None = None,
        default_rules: AccessoryRules | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.catalog = catalog
        self.config = config
        self.generators = list(generators)
        self.source_names = tuple(g.name for g in self.generators)
        self.quotas = {s.name: s.quota for s in config.generators}
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
        self.mined_suggestions: list[Any] | None = None  # recsys.rules.mining.Suggestion, saved as mined_rules.json
        self.manifest: dict[str, Any] = manifest or {}
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
        look = look_categories(catalog.category_tag_share()) if catalog.has_categories else np.zeros(0, bool)
        # categories that make a look (furniture, lighting, decor): the "complete the look" slots
        self._look_category = look if look.any() else np.ones(len(catalog.categories), bool)
        self._titles = catalog.frame["title"].to_numpy(object)
        self._cat_names = catalog.frame["category"].to_numpy(object)
        self._style_labels = {
            slug: catalog.taxonomy.name(slug).split("/")[0].strip().lower() for slug in catalog.taxonomy.slugs
        }
        self._popular_scores: np.ndarray | None = None
        self._ranker_ms = 3.0  # running estimate of the ranker's cost for one request

    # --- identity ------------------------------------------------------------------------

    @property
    def version(self) -> str:
        return str(self.manifest.get("version") or f"unsaved-{self.config.hash[:8]}")

    # --- public API ----------------------------------------------------------------------

    def recommend(
        self,
        request: RecommendationRequest,
        *,
        rules: AccessoryRules | None = None,
        deadline: float | None = None,
    ) -> Recommendation:
        """One request. ``deadline`` is an absolute ``time.perf_counter()`` value: if the ranker
        cannot finish before it, answer from the merged candidate order, ``degraded=True``."""
        return self._run([request], rules=rules, deadline=deadline)[0]

    def recommend_batch(
        self, requests: Sequence[RecommendationRequest], *, rules: AccessoryRules | None = None,
        chunk_size: int = 512,
    ) -> list[Recommendation]:
        """Many requests, vectorised per chunk (generators, features and ranker run once per chunk)."""
        out: list[Recommendation] = []
        for i in range(0, len(requests), chunk_size):
            out.extend(self._run(list(requests[i : i + chunk_size]), rules=rules, deadline=None))
        return out

    def infer_style(self, basket: Sequence[BasketLine]) -> tuple[StyleReading, list[str]]:
        """The basket's style reading and the SKUs not in the catalog."""
        rows, qty, unknown = self._map_basket(basket)
        return self._read_style(rows, qty), unknown

    def product_recommendations(self, sku: str, k: int = 10) -> Recommendation:
        """Product page: items that complete the look of ``sku`` and are bought with it."""
        req = RecommendationRequest(basket=(BasketLine(sku, 1),), page="product", k=k)
        return self.recommend(req)

    def popular(self, k: int, category: str | None = None, *, in_stock: bool = True) -> list[RecommendedItem]:
        """Most bought items in the last 30 days before the model's reference time."""
        scores = self._popularity()
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

    def candidate_features(self, request: RecommendationRequest) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
        """The online feature rows of one request: candidate rows (m,), feature names and the
        (m, n_features) matrix the ranker scores (for parity checks and debugging)."""
        if self.features is None:
            raise ValueError("this recommender has no feature assembler")
        prepared = [self._prepare(request)]
        merged = self.generate_candidates(prepared)
        X = self.features.compute(self.build_batch(prepared, merged))
        return merged[0].rows, tuple(self.features.feature_names), X

    # --- pipeline ------------------------------------------------------------------------

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

    def _prepare(self, request: RecommendationRequest) -> _Prepared:
        rows, qty, unknown = self._map_basket(request.basket)
        excl, _ = self.catalog.ids.rows(list(request.exclude_skus))
        exclude = np.union1d(rows, excl).astype(np.int64)
        query_rows, query_qty = rows, qty
        ctx = request.user_context
        if not len(rows) and ctx is not None and ctx.recent_skus:
            recent, _ = self.catalog.ids.rows(list(dict.fromkeys(ctx.recent_skus)))
            query_rows, query_qty = recent, np.ones(len(recent), np.int64)
        user_row = self.user_index.get(request.user_id, -1) if request.user_id else -1
        p = _Prepared(
            request, rows, qty, tuple(unknown), exclude, query_rows, query_qty, user_row,
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
            codes = [self.catalog.categories.index(c) for c in filters.categories if c in self.catalog.categories]
            m = np.isin(self._categories, codes)
            mask = m if mask is None else (mask & m)
        return mask

    def generate_candidates(self, prepared: Sequence[_Prepared]) -> list[MergedCandidates]:
        """Run every generator on the batch and merge per basket (quotas, dedupe, filters)."""
        queries = [
            CandidateQuery(
                rows=p.query_rows, quantities=p.query_qty, user_row=p.user_row,
                style=p.style_vec if p.reading.top is not None else None, exclude=p.exclude,
            )
            for p in prepared
        ]
        outputs = []
        for g in self.generators:
            quota = self.quotas.get(g.name, 50)
            try:
                rows, scores = g.generate(queries, quota)
            except Exception:  # a broken source must not take the request down
                log.exception("generator %s failed; continuing without it", g.name)
                rows = np.full((len(queries), quota), -1, np.int64)
                scores = np.full((len(queries), quota), -np.inf, np.float32)
            outputs.append((np.asarray(rows, np.int64), np.asarray(scores, np.float32), quota))
        masks: dict[Filters, np.ndarray | None] = {}
        merged = []
        n_src = len(self.generators)
        for qi, p in enumerate(prepared):
            f = p.request.filters
            if f not in masks:
                masks[f] = self._filter_mask(f)
            mask = masks[f]
            rows_l, key_l, src_l, score_l, rank_l = [], [], [], [], []
            for gi, (rows, scores, quota) in enumerate(outputs):
                r = rows[qi]
                ok = r >= 0
                r = r[ok]
                pos = np.nonzero(ok)[0]
                rows_l.append(r)
                key_l.append((pos + 0.5) / quota + gi * 1e-6)
                src_l.append(np.full(len(r), gi))
                score_l.append(scores[qi][ok])
                rank_l.append(pos + 1.0)
            allr = np.concatenate(rows_l) if rows_l else np.empty(0, np.int64)
            keys = np.concatenate(key_l) if key_l else np.empty(0)
            src = np.concatenate(src_l) if src_l else np.empty(0, np.int64)
            sc = np.concatenate(score_l) if score_l else np.empty(0, np.float32)
            rk = np.concatenate(rank_l) if rank_l else np.empty(0)
            keep = ~np.isin(allr, p.exclude)
            if mask is not None:
                keep &= mask[allr]
            allr, keys, src, sc, rk = allr[keep], keys[keep], src[keep], sc[keep], rk[keep]
            uniq, inv = np.unique(allr, return_inverse=True)
            best = np.full(len(uniq), np.inf)
            np.minimum.at(best, inv, keys)
            order = np.argsort(best, kind="stable")[: self.config.total_candidates]
            cand = uniq[order]
            where = np.full(len(uniq), -1, np.int64)
            where[order] = np.arange(len(order))
            scores_m = np.full((len(cand), n_src), np.nan, np.float32)
            ranks_m = np.full((len(cand), n_src), np.nan, np.float32)
            at = where[inv]
            sel = at >= 0
            scores_m[at[sel], src[sel]] = sc[sel]
            ranks_m[at[sel], src[sel]] = rk[sel]
            if not len(cand):
                cand = self._fallback_popular(p.exclude, mask, self.config.total_candidates)
                scores_m = np.full((len(cand), n_src), np.nan, np.float32)
                ranks_m = np.full((len(cand), n_src), np.nan, np.float32)
            merged.append(MergedCandidates(cand, scores_m, ranks_m))
        return merged

    def _popularity(self) -> np.ndarray:
        if self._popular_scores is None:
            if self.features is not None:
                recent = self.features.popularity(self.reference_ts, POPULAR_WINDOW_DAYS)
                longer = self.features.popularity(self.reference_ts, 365)
                self._popular_scores = recent + 0.01 * longer
            else:
                self._popular_scores = np.zeros(len(self.catalog), np.float64)
        return self._popular_scores

    def _fallback_popular(self, exclude: np.ndarray, mask: np.ndarray | None, n: int) -> np.ndarray:
        scores = self._popularity()
        ok = np.ones(len(scores), bool) if mask is None else mask.copy()
        ok[exclude] = False
        rows = np.nonzero(ok)[0]
        return rows[np.argsort(-scores[rows], kind="stable")[:n]].astype(np.int64)

    def build_batch(self, prepared: Sequence[_Prepared], merged: Sequence[MergedCandidates]) -> CandidateBatch:
        """The feature store's input for these baskets and their candidates."""
        n_styles = len(self.catalog.taxonomy)
        sizes = [len(m.rows) for m in merged]
        ptr = np.zeros(len(merged) + 1, np.int64)
        ptr[1:] = np.cumsum(sizes)
        n_src = len(self.source_names)

        def cat(arrs: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
            return np.concatenate(arrs) if arrs else np.empty(shape, dtype)

        return CandidateBatch(
            query_ptr=ptr,
            cand_rows=cat([m.rows for m in merged], (0,), np.int64),
            source_scores=cat([m.scores for m in merged], (0, n_src), np.float32),
            source_ranks=cat([m.ranks for m in merged], (0, n_src), np.float32),
            source_names=self.source_names,
            basket_rows=[p.query_rows for p in prepared],
            basket_qty=[p.query_qty for p in prepared],
            basket_style=np.stack([p.style_vec for p in prepared]) if prepared else np.zeros((0, n_styles), np.float32),
            style_confidence=np.array([p.reading.confidence for p in prepared], np.float32),
            user_affinity=np.stack([p.affinity for p in prepared]) if prepared else np.zeros((0, n_styles), np.float32),
            now=np.array([p.now for p in prepared], np.int64),
        )

    def _run(
        self, requests: Sequence[RecommendationRequest], *, rules: AccessoryRules | None,
        deadline: float | None,
    ) -> list[Recommendation]:
        t0 = time.perf_counter()
        prepared = [self._prepare(r) for r in requests]
        t1 = time.perf_counter()
        merged = self.generate_candidates(prepared)
        t2 = time.perf_counter()
        batch = self.build_batch(prepared, merged)
        scores = None
        degraded_reason = None
        t3 = t4 = t2
        X = None
        if self.ranker is not None and self.features is not None and self.config.ranker.enabled:
            if deadline is not None and time.perf_counter() + self._ranker_ms / 1000 > deadline:
                degraded_reason = DEGRADED_LATENCY
            else:
                X = self.features.compute(batch)
                t3 = time.perf_counter()
                scores = self.ranker.predict(X)
                t4 = time.perf_counter()
                if len(requests) == 1:
                    self._ranker_ms = 0.8 * self._ranker_ms + 0.2 * (t4 - t2) * 1000
        out = []
        rules = rules if rules is not None else self.default_rules
        for qi, (p, m) in enumerate(zip(prepared, merged, strict=True)):
            lo, hi = int(batch.query_ptr[qi]), int(batch.query_ptr[qi + 1])
            if scores is not None:
                s = scores[lo:hi]
                order = np.argsort(-s, kind="stable")
            else:
                s = 1.0 / (1.0 + np.arange(hi - lo, dtype=np.float64))  # merged order
                order = np.arange(hi - lo)
            k = max(int(p.request.k), 0)
            order, s, applied = apply_controls(m.rows, s, p.request.controls, page=p.request.page, now=p.request.now)
            accessories: tuple[AccessorySlot, ...] = ()
            if rules is not None and p.request.page in ("cart", "checkout") and len(p.rows):
                # one accessory section; the ranked items do not repeat its SKUs or categories
                accessories = self._accessories(p, rules, set())
                shown = [self.catalog.ids.row(a.sku) for a in accessories]
                order = order[not_shown(m.rows[order], self.catalog.category_codes, shown)]
            cats = self._categories[m.rows]
            picked = cap_per_category(order, cats, k, self.config.max_per_category)
            if self.config.style_slots and p.reading.top is not None:
                picked = reserve_slots(
                    picked, order, self._completes_look(p, m.rows), cats, self.config.style_slots
                )
            items = self._items(p, m, picked, s)
            out.append(
                Recommendation(
                    items=items, style=p.reading, accessories=accessories, unknown_skus=p.unknown,
                    degraded=degraded_reason is not None, degraded_reason=degraded_reason,
                    controls_applied=tuple((str(self.catalog.skus[a.row]), a.control_id, a.action) for a in applied),
                )
            )
        t5 = time.perf_counter()
        timings = {
            "prepare_style": (t1 - t0) * 1000, "candidates": (t2 - t1) * 1000,
            "features": (t3 - t2) * 1000, "ranker": (t4 - t3) * 1000,
            "assemble": (t5 - max(t4, t2)) * 1000, "total": (t5 - t0) * 1000,
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
        return (st.argmax(axis=1) == col) & (st[:, col] >= 0.4)

    def _completes_look(self, p: _Prepared, rows: np.ndarray) -> np.ndarray:
        """Candidates that complete the basket's look: in its style, from a look-defining
        category (furniture, lighting, decor) the basket does not hold yet."""
        basket_cats = self._categories[p.rows]
        cats = self._categories[rows]
        new_category = ~np.isin(cats, basket_cats[basket_cats >= 0])
        look = np.zeros(len(rows), bool)
        known = cats >= 0
        look[known] = self._look_category[cats[known]]
        return self._in_basket_style(rows, p.reading.top) & new_category & look

    def _items(
        self, p: _Prepared, m: MergedCandidates, picked: np.ndarray, scores: np.ndarray
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
            items.append(RecommendedItem(str(self.catalog.skus[r]), float(scores[pos]), srcs, reason))
        return tuple(items)

    def _reason(self, row: int, sources: tuple[str, ...], partner: int) -> str:
        if partner >= 0:
            return f"often bought with {str(self._titles[partner]).lower()}"
        if "item_knn" in sources or "cf" in sources:
            return "bought by shoppers with similar baskets"
        cat = self._cat_names[row]
        return f"popular in {cat.replace('-', ' ')}" if cat else "popular right now"

    def _accessories(self, p: _Prepared, rules: AccessoryRules, used: set[int]) -> tuple[AccessorySlot, ...]:
        try:
            fired = rules.match(p.rows.tolist(), p.qty.tolist(), p.reading, p.request.page, p.request.now)
        except Exception:  # rules must never break a recommendation
            log.exception("rules engine failed; answering without accessories")
            return ()
        pop = self._popularity()
        pop_n = np.log1p(pop) / max(float(np.log1p(pop.max())), 1e-9)

        def score(cand: np.ndarray) -> np.ndarray:
            s = pop_n[cand].astype(np.float64) + 0.2 * self._in_stock[cand]
            if self.item_styles is not None and p.reading.top is not None:
                s += 2.0 * (self.item_styles[cand] @ p.style_vec)
            return s

        slots = fill_accessory_slots(
            fired, self.catalog.category_codes, cap=p.request.accessory_slots, item_rows=used,
            taken_rows=p.exclude.tolist(), allowed=self._filter_mask(p.request.filters), score=score,
        )
        return tuple(AccessorySlot(str(self.catalog.skus[s.row]), s.rule_id, s.reason) for s in slots)

    def _spread_over_categories(self, rows: np.ndarray, score: np.ndarray) -> np.ndarray:
        """``rows`` best first, but the best of every suggested category before any second
        one: a paint rule's three slots show tape, gloves and a roller, not three tapes."""
        order = np.argsort(-score, kind="stable")
        rows = rows[order]
        cats = self.catalog.category_codes[rows]
        nth_in_category = np.zeros(len(rows), np.int64)
        seen: dict[int, int] = {}
        for i, c in enumerate(cats.tolist()):
            nth_in_category[i] = seen.get(c, 0)
            seen[c] = nth_in_category[i] + 1
        return rows[np.argsort(nth_in_category, kind="stable")]

    # --- persistence ---------------------------------------------------------------------

    def save(self, directory: Path | str, *, run_id: str | None = None, metrics: dict[str, float] | None = None) -> Path:
        """Write the bundle (see ``recsys.bundle``) and return its directory."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_catalog(directory, self.catalog)
        components: list[dict[str, Any]] = []
        for spec, g in zip(self.config.generators, self.generators, strict=True):
            sub = Path("generators") / spec.name
            g.save(directory / sub)
            components.append({"name": spec.name, "kind": spec.kind, "path": str(sub)})
        if self.style_model is not None:
            self.style_model.save(directory / "style")
            components.append({"name": "style_model", "kind": "style", "path": "style"})
        if self.features is not None:
            self.features.save(directory / "features")
            components.append({"name": "features", "kind": "features", "path": "features"})
        if self.ranker is not None:
            self.ranker.save(directory / "ranker")
            components.append({"name": "ranker", "kind": "ranker", "path": "ranker"})
        if self.mined_suggestions is not None:
            from recsys.rules.mining import save_suggestions

            save_suggestions(self.mined_suggestions, directory / MINED_RULES)
            components.append({"name": "mined_rules", "kind": "rules", "path": MINED_RULES})
        (directory / "users.json").write_text(json.dumps(self.user_index.to_list()))
        np.savez_compressed(directory / "user_affinity.npz", affinity=self.user_affinity)
        created = now_iso()
        manifest = dict(self.manifest)
        manifest.update(
            {
                "schema_version": SCHEMA_VERSION,
                "code_version": code_version(),
                "created_at": created,
                "run_id": run_id if run_id is not None else manifest.get("run_id"),
                "version": manifest.get("version") or f"{created[:19].replace('-', '').replace(':', '')}-{self.config.hash[:8]}",
                "feature_set": {
                    "name": self.config.feature_set,
                    "version": getattr(self.features, "version", None),
                    "features": list(getattr(self.features, "feature_names", ())),
                },
                "config_hash": self.config.hash,
                "config": self.config.to_dict(),
                "components": components,
                "reference_ts": self.reference_ts,
                "metrics": metrics if metrics is not None else manifest.get("metrics"),
            }
        )
        write_manifest(directory, manifest)
        self.manifest = manifest
        return directory

    @classmethod
    def load(
        cls,
        directory: Path | str,
        feature_loader: Callable[[Path], FeatureAssembler] | None = None,
        default_rules: AccessoryRules | None = None,
    ) -> Recommender:
        """Read a bundle. Without ``feature_loader`` (the feature store supplies it) the ranker
        cannot run and answers come from the merged candidate order."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        try:
            config = config_from_dict(manifest["config"])
        except ValueError as exc:
            raise BundleError(directory / "manifest.json", f"config: {exc}") from exc
        catalog = load_catalog(directory)
        by_name = {c["name"]: c for c in manifest["components"]}
        generators = []
        for spec in config.generators:
            comp = by_name.get(spec.name)
            if comp is None:
                raise BundleError(directory / "manifest.json", f"component {spec.name!r} not listed")
            try:
                klass = spec.generator_class()
            except (ImportError, AttributeError) as exc:
                raise BundleError(directory / comp["path"], f"generator class unavailable: {exc}") from exc
            g = load_component(directory / comp["path"], klass.load)
            g.name = spec.name
            generators.append(g)
        style_model = None
        if "style_model" in by_name:
            from recsys.style.item_model import ItemStyleModel

            style_model = load_component(directory / "style", ItemStyleModel.load)
        features = None
        if "features" in by_name and feature_loader is not None:
            features = load_component(directory / "features", feature_loader)
        ranker = None
        if "ranker" in by_name:
            ranker = load_component(directory / "ranker", LightGBMRanker.load)
        users_path = require(directory, "users.json")
        try:
            users = IdIndex(json.loads(users_path.read_text()))
        except (json.JSONDecodeError, ValueError) as exc:
            raise BundleError(users_path, f"corrupt: {exc}") from exc
        aff_path = require(directory, "user_affinity.npz")
        try:
            with np.load(aff_path, allow_pickle=False) as z:
                affinity = z["affinity"]
        except Exception as exc:  # noqa: BLE001
            raise BundleError(aff_path, f"corrupt: {exc}") from exc
        rec = cls(
            catalog, config, generators, features=features, ranker=ranker, style_model=style_model,
            user_index=users, user_affinity=affinity, reference_ts=manifest.get("reference_ts"),
            default_rules=default_rules, manifest=manifest,
        )
        if "mined_rules" in by_name:
            from recsys.rules.engine import RuleEngine
            from recsys.rules.mining import load_suggestions

            rec.mined_suggestions = load_component(directory / MINED_RULES, load_suggestions)
            if default_rules is None and rec.mined_suggestions:
                rec.default_rules = RuleEngine.compile(
                    [s.to_rule() for s in rec.mined_suggestions], catalog, rec.item_styles
                )
        return rec
