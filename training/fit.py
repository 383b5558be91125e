"""The fitting pipeline: split -> style model -> generators -> ranker examples -> ranker ->
evaluation. ``recsys train`` wraps this with MLflow; experiments call it directly.

Windows (by time, shares from the config): generators and feature statistics learn from the
first; the ranker learns basket completions of the second (candidates and features computed
from what the first window learned, popularity point-in-time), early-stops on the third; the
last window is only used for evaluation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.assembler import StoreFeatureAssembler
from feature_store.loading import validate_config_features
from feature_store.statistics import FeatureStatistics
from recsys.bundle import model_version
from recsys.candidates.base import CandidateGenerator, TrainingData
from recsys.candidates.repeat import RepeatPurchaseCandidates
from recsys.candidates.training_data import training_data_from_orders
from recsys.config import CF_KINDS, KNOWN_GENERATORS, GeneratorSpec, PipelineConfig, fit_generators
from recsys.data.catalog import Catalog
from recsys.data.interactions import Interactions
from recsys.data.orders import OrderTable, build_orders
from recsys.engine.aggregates import AggregationEngine, EngineWindow
from recsys.ids import IdIndex
from recsys.recommendation import AccessoryRules
from recsys.recommender import Recommender
from recsys.rules.mining import mine_suggestions, suggestion_rules
from recsys.style.item_model import ItemStyleModel
from training.evaluation import CandidateSet, EvaluationResult, build_candidate_set, evaluate
from training.splits import hide_for_ranker, hide_items, window_cuts, window_masks

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
MIN_ORDERS = 20
# the strongest simple baselines (Dacrema et al. 2019): every report compares with them
REFERENCE_BASELINES = ("ease", "rp3beta", "item_knn")


@dataclass
class FitResult:
    recommender: Recommender
    stage_seconds: dict[str, float]
    evaluation: EvaluationResult
    feature_importance: dict[str, float] = field(default_factory=dict)
    windows: dict[str, str] = field(default_factory=dict)
    n_examples: dict[str, int] = field(default_factory=dict)


class _Stages:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()
        self._name: str | None = None

    def start(self, name: str, fraction: float) -> None:
        self.stop()
        self._name, self._t = name, time.perf_counter()
        log.info("stage %s", name)
        if self.progress:
            self.progress(name, fraction)

    def stop(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = round(time.perf_counter() - self._t, 3)
            self._name = None


def _fit_generators(
    config: PipelineConfig, data: TrainingData, seed: int
) -> list[CandidateGenerator]:
    return fit_generators(config.generators, data, seed)


def _user_affinity(
    orders: OrderTable, users: IdIndex, item_styles: np.ndarray | None, n_styles: int
) -> np.ndarray:
    """(n_users, n_styles): normalised style mass of each user's purchases; NaN rows when none."""
    aff = np.zeros((len(users), n_styles), np.float64)
    if item_styles is None or not len(users) or item_styles.shape[1] != n_styles:
        return np.full((len(users), n_styles), np.nan, np.float32)
    binary = orders.matrix.copy()
    binary.data[:] = 1.0
    per_order = np.asarray(binary @ item_styles)
    idx = np.array([users.get(u, -1) if u is not None else -1 for u in orders.user_ids], np.int64)
    ok = idx >= 0
    np.add.at(aff, idx[ok], per_order[ok])
    tot = aff.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(tot > 0, aff / tot, np.nan)
    return out.astype(np.float32)


def _fit_style(
    catalog: Catalog, config: PipelineConfig, win: OrderTable, seed: int
) -> tuple[ItemStyleModel | None, np.ndarray | None, np.ndarray | None]:
    if not config.style_enabled:
        return None, None, None
    from recsys.style.item_model import ItemStyleModel

    params = dict(config.style_params)
    params.setdefault("seed", seed)
    model = ItemStyleModel(**params).fit(catalog, win.matrix)
    item_styles = np.asarray(model.item_styles_, np.float32)
    if not item_styles.any():
        log.info("style model learned no styles from this catalog; style features are 0")
    return model, item_styles, np.asarray(model.informativeness_, np.float32)


def _fit_components(
    catalog: Catalog,
    config: PipelineConfig,
    win: OrderTable,
    all_orders: OrderTable,
    style_model: ItemStyleModel | None,
    item_styles: np.ndarray | None,
    informativeness: np.ndarray | None,
    seed: int,
    engine_window: EngineWindow | None = None,
) -> tuple[Recommender, TrainingData]:
    """Generators, feature statistics and user affinity learned from ``win``; the popularity
    timeline holds every purchase line (lookups only count lines before a basket's time).
    ``engine_window``: the engine and window of ``win`` that computes its aggregates (None:
    computed here)."""
    users = IdIndex(sorted({u for u in win.user_ids if u is not None}))
    data = training_data_from_orders(catalog, win, users, item_styles, engine_window)
    generators = _fit_generators(config, data, seed)
    affinity = _user_affinity(win, users, item_styles, len(catalog.taxonomy))
    # every order of a shopper known to this model (all windows; lookups are point-in-time)
    user_of = np.array(
        [users.get(u, -1) if u is not None else -1 for u in all_orders.user_ids], np.int64
    )
    per_order = np.diff(all_orders.matrix.indptr)
    stats = FeatureStatistics().fit(
        win.matrix,
        catalog.category_codes,
        catalog.prices,
        all_orders.line_rows,
        all_orders.line_ts,
        item_styles=item_styles,
        informativeness=informativeness,
        reference_ts=int(all_orders.line_ts.max()) + 1,
        user_purchases=(
            np.repeat(user_of, per_order),
            all_orders.matrix.indices,
            np.repeat(all_orders.ts, per_order),
        ),
        aggregates=data.order_aggregates(),
    )
    cf_sources = frozenset(s.name for s in config.generators if s.kind in CF_KINDS)
    features = StoreFeatureAssembler(
        stats,
        config.feature_set,
        config.generator_names,
        cf_sources,
        config.ranker.exclude_features,
    )
    rec = Recommender(
        catalog,
        config,
        generators,
        features=features,
        ranker=None,
        style_model=style_model,
        user_index=users,
        user_affinity=affinity,
        reference_ts=stats.reference_ts_,
    )
    return rec, data


def _groups(
    cs: CandidateSet, negatives: int = 0, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, y, group sizes of the baskets that have at least one hidden item among candidates;
    with ``negatives`` > 0 each basket keeps all positives and that many random negatives
    (in candidate order), which bounds the ranker's training cost."""
    sizes = np.diff(cs.query_ptr)
    pos = np.add.reduceat(cs.labels, cs.query_ptr[:-1]) if len(cs.labels) else np.zeros(len(sizes))
    pos = np.where(sizes > 0, pos, 0)
    keep_q = (pos > 0) & (sizes > 1)
    if negatives <= 0 or rng is None:
        keep_rows = np.repeat(keep_q, sizes)
        return cs.X[keep_rows], cs.labels[keep_rows], sizes[keep_q]
    idx_parts, out_sizes = [], []
    for q in np.flatnonzero(keep_q):
        lo, hi = int(cs.query_ptr[q]), int(cs.query_ptr[q + 1])
        lab = cs.labels[lo:hi]
        neg = np.flatnonzero(lab == 0)
        if len(neg) > negatives:
            neg = rng.choice(neg, size=negatives, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(lab > 0), neg])) + lo
        idx_parts.append(keep)
        out_sizes.append(len(keep))
    idx = np.concatenate(idx_parts) if idx_parts else np.empty(0, np.int64)
    return cs.X[idx], cs.labels[idx], np.asarray(out_sizes, np.int64)


def fit_recommender(
    catalog: Catalog,
    interactions: Interactions,
    config: PipelineConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    cutoff: pd.Timestamp | None = None,
    output_dir: Path | None = None,
    ground_truth: pd.DataFrame | None = None,
    rules: AccessoryRules | None = None,
    item_truth: pd.DataFrame | None = None,
    ablations: bool = False,
    references: Sequence[str] = REFERENCE_BASELINES,
    refit: bool | None = None,
    engine: AggregationEngine | None = None,
) -> FitResult:
    """Fit every stage and evaluate on the last time window (or on orders from ``cutoff`` on).

    ``output_dir`` receives the evaluation plots; ``ground_truth`` (sample world) adds style
    coherence and accessory recall (with ``rules`` at checkout) and ``item_truth`` (sku,
    true_styles) the items' true styles for coherence; ``ablations`` retrains the ranker
    without style features, without CF features and without the shopper's own history (group
    ``user``) for the report; ``references`` names generator kinds fitted as stand-alone
    baselines when the pipeline lacks them; ``refit`` overrides the config's
    ``refit_generators`` (evaluation-only runs skip it); ``engine`` computes the co-occurrence
    aggregates and item popularity (default: in process, from the orders)."""
    validate_config_features(config)
    # independent streams: the evaluation baskets do not depend on how training was sampled
    rng_train, rng_val, rng_neg, rng_eval = (np.random.default_rng([seed, i]) for i in range(4))
    st = _Stages(progress)
    st.start("split", 0.0)
    orders = build_orders(interactions, catalog)
    if len(orders) < MIN_ORDERS:
        raise ValueError(
            f"fit_recommender: only {len(orders)} orders with catalog SKUs; need >= {MIN_ORDERS}"
        )
    tc = config.training
    shares = (tc.generator_share, tc.ranker_share, tc.validation_share, tc.evaluation_share)
    cut_ts = None if cutoff is None else int(pd.Timestamp(cutoff).timestamp())
    cuts = window_cuts(orders.ts, shares, cut_ts)
    win_a, win_b, win_c, win_d = (orders.subset(m) for m in window_masks(orders.ts, cuts))
    windows = {
        name: f"{len(w)} orders"
        for name, w in zip(
            ("generators", "ranker", "validation", "evaluation"),
            (win_a, win_b, win_c, win_d),
            strict=True,
        )
    }
    windows["cuts"] = ", ".join(pd.Timestamp(c, unit="s", tz="UTC").isoformat() for c in cuts)

    st.start("style_model", 0.1)
    style_model, item_styles, informativeness = _fit_style(catalog, config, win_a, seed)

    st.start("generators", 0.25)
    # the evaluated model knows only what happened before the evaluation window: its popularity
    # and shopper-history timelines stop there, as a bundle trained at that moment would
    # (the refit below, which is served, knows every order)
    known = orders.before(cuts[-1])
    window_a = EngineWindow(engine, None, cuts[0]) if engine is not None else None
    rec, rec_data = _fit_components(
        catalog, config, win_a, known, style_model, item_styles, informativeness, seed, window_a
    )
    features = rec.features
    assert isinstance(features, StoreFeatureAssembler)

    st.start("ranker_examples", 0.45)
    train_c = hide_for_ranker(
        win_b, tc.hide_fraction, rng_train, tc.max_train_orders, tc.ranker_hide_draws
    )
    val_c = hide_items(win_c, tc.hide_fraction, rng_val, tc.max_validation_orders)
    train_cs = build_candidate_set(rec, win_b, train_c)
    val_cs = build_candidate_set(rec, win_c, val_c)
    X, y, g = _groups(train_cs, tc.negatives_per_basket, rng_neg)
    Xv, yv, gv = _groups(val_cs, tc.negatives_per_basket, rng_neg)
    n_examples = {"train_baskets": len(g), "train_rows": len(y), "validation_baskets": len(gv)}
    log.info("ranker examples: %s", n_examples)

    st.start("ranker", 0.65)
    rc = config.ranker
    ranker = None
    importance: dict[str, float] = {}
    names = features.feature_names
    if rc.enabled and len(g) and y.any():
        ranker = rc.build(seed).fit(X, y, g, names, Xv, yv, gv)
        importance = ranker.feature_importance()
        rec = rec.replace(ranker=ranker)
    else:
        log.warning(
            "no ranker: %s", "disabled in config" if not rc.enabled else "no positive examples"
        )

    st.start("evaluation", 0.8)
    eval_c = hide_items(win_d, tc.hide_fraction, rng_eval, tc.max_eval_orders)
    variants: dict[str, Recommender] = {}
    if ranker is not None and ablations:
        for label, groups in (
            ("ranker without style features", ("style",)),
            ("ranker without CF features", ("cf",)),
            ("ranker without shopper history features", ("user",)),
        ):
            sub = features.with_exclusions(groups)
            cols = np.array([names.index(n) for n in sub.feature_names], np.int64)
            if len(cols) == len(names):
                continue
            abl = rc.build(seed).fit(X[:, cols], y, g, sub.feature_names, Xv[:, cols], yv, gv)
            variants[label] = rec.replace(ranker=abl, features=sub)
    ref_gens = _fit_references(config, references, rec_data, seed)
    # the history features' simplest rival: the shopper's items known before the cut, then EASE
    repeat_ref = RepeatPurchaseCandidates().fit(
        training_data_from_orders(catalog, known, rec.user_index, item_styles)
    )
    start_d = cuts[-1]
    evaluation = evaluate(
        rec,
        win_d,
        eval_c,
        start_d,
        variants=variants,
        references=ref_gens,
        repeat_reference=repeat_ref,
        ground_truth=ground_truth,
        rules=rules,
        output_dir=output_dir,
        item_truth=item_truth,
    )
    if tc.refit_generators if refit is None else refit:
        # the served bundle learns from every order; the figures above are those of the same
        # pipeline fitted before the evaluation window (the only honest way to measure it)
        st.start("refit", 0.95)
        style_model, item_styles, informativeness = _fit_style(catalog, config, orders, seed)
        window_all = EngineWindow(engine) if engine is not None else None
        rec, _ = _fit_components(
            catalog,
            config,
            orders,
            orders,
            style_model,
            item_styles,
            informativeness,
            seed,
            window_all,
        )
        rec = rec.replace(ranker=ranker)
    suggestions = None
    if catalog.has_categories:
        st.start("mined_rules", 0.98)
        try:
            suggestions = mine_suggestions(catalog, interactions)
        except Exception:  # proposals are optional; a failure must not lose the model
            log.exception("mining rule suggestions failed; the bundle will have none")
    st.stop()
    manifest = dict(rec.manifest)
    manifest["version"] = model_version(config.hash)
    manifest["metrics"] = {k: round(v, 6) for k, v in evaluation.metrics.items()}
    # mined suggestions are the model's default checkout rules, as when the bundle is loaded
    default_rules = suggestion_rules(suggestions, catalog, rec.item_styles)
    rec = rec.replace(mined_suggestions=suggestions, manifest=manifest, default_rules=default_rules)
    return FitResult(rec, st.seconds, evaluation, importance, windows, n_examples)


def _fit_references(
    config: PipelineConfig, kinds: Sequence[str], data: TrainingData, seed: int
) -> list[CandidateGenerator]:
    """Stand-alone baseline models of ``kinds`` (default hyperparameters, fitted on the same
    window as the generators) that the pipeline does not already hold: the strong simple
    baselines every figure is compared with."""
    have = {spec.kind for spec in config.generators}
    out: list[CandidateGenerator] = []
    for kind in kinds:
        if kind in have or kind not in KNOWN_GENERATORS:
            continue
        spec = GeneratorSpec(name=f"{kind} (reference)", kind=kind, quota=1)
        out.append(spec.build(seed).fit(data))
    return out
