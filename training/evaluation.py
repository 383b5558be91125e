"""Offline evaluation on a held-out time window, every figure next to baselines measured on
the same baskets: popularity, each generator alone, reference models (EASE, RP3beta, item-kNN
when the pipeline does not already hold them), the pipeline without the ranker, and ablations.

The evaluated list is the served list: ``Recommender.recommend_batch`` for the request the
storefront would send (the same steps as the API, complete-the-look slots and category cap
included). Nothing here builds a top-k of its own except the stand-alone baselines.

Protocol: orders of the evaluation window (later than everything the models learned from)
with at least two distinct items; ``hide_fraction`` of each order's items is hidden, the rest
is the basket; a method scores by finding the hidden items in its top ``k``. Popularity is
taken point-in-time (the 30 days before the window starts). Items are not filtered by the
current stock flag (historical orders bought items that may be out of stock now).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.candidates.base import CandidateGenerator
from recsys.candidates.merger import MergedBatch, MergedCandidates
from recsys.data.orders import OrderTable
from recsys.recommendation import AccessoryRules, BasketLine, Filters, RecommendationRequest
from recsys.recommender import PipelineKnobs, PreparedBasket, Recommender
from training import metrics as M
from training.splits import Completion

K = 10
NO_FILTERS = Filters(in_stock=False)


@dataclass
class EvaluationResult:
    """``metrics``: the served model's figures; ``baselines``: method -> metric -> value
    (the served model included as ``ranker``); ``figures``: name -> PNG path."""

    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    report_markdown: str = ""
    figures: dict[str, Path] = field(default_factory=dict)
    n_baskets: int = 0
    protocol: str = ""
    # the evaluated requests and the served list (catalog rows) of each: what a shopper got
    served_requests: list[RecommendationRequest] = field(default_factory=list)
    served_lists: list[list[int]] = field(default_factory=list)


@dataclass
class CandidateSet:
    """Candidates and features of many completion baskets (what the ranker learns from), built
    by the served pipeline's own steps (prepare -> candidates -> features)."""

    completions: list[Completion]
    prepared: list[PreparedBasket]
    merged: MergedBatch
    X: np.ndarray
    labels: np.ndarray

    @property
    def query_ptr(self) -> np.ndarray:
        return self.merged.query_ptr

    @property
    def cand_rows(self) -> np.ndarray:
        return self.merged.rows


def completion_requests(
    rec: Recommender,
    orders: OrderTable,
    completions: Sequence[Completion],
    page: str = "cart",
    k: int = K,
    *,
    at_order_time: bool = True,
) -> list[RecommendationRequest]:
    """The request the storefront would send for each completion basket: its visible items,
    its shopper, without the current stock flag. ``at_order_time`` puts it at its order's time
    (point-in-time features: how ranker examples are built); ``False`` leaves the time out, as
    the API does, so the model answers at its own "now" (how evaluation scores what is
    served: a bundle trained before the window answers every basket of it that way)."""
    skus = rec.catalog.skus
    out = []
    for c in completions:
        ts = datetime.fromtimestamp(int(orders.ts[c.order]), tz=UTC)
        basket = tuple(
            BasketLine(str(skus[r]), int(q)) for r, q in zip(c.visible, c.visible_qty, strict=True)
        )
        user = orders.user_ids[c.order]
        out.append(
            RecommendationRequest(
                basket=basket,
                user_id=None if user is None else str(user),
                page=page,  # type: ignore[arg-type]
                k=k,
                filters=NO_FILTERS,
                now=ts if at_order_time else None,
            )
        )
    return out


def build_candidate_set(
    rec: Recommender, orders: OrderTable, completions: Sequence[Completion], chunk: int = 1000
) -> CandidateSet:
    """Run the served pipeline up to the features for every completion basket."""
    if rec.features is None:
        raise ValueError("build_candidate_set: the recommender has no feature assembler")
    reqs = completion_requests(rec, orders, completions)
    prepared: list[PreparedBasket] = []
    merged: list[MergedCandidates] = []
    xs, labels = [], []
    for i in range(0, len(reqs), chunk):
        p = rec.prepare(reqs[i : i + chunk])
        m = rec.candidates(p)
        _, X = rec.feature_matrix(p, m)
        xs.append(X)
        for c, mc in zip(completions[i : i + chunk], m, strict=True):
            labels.append(np.isin(mc.rows, c.hidden).astype(np.float32))
            merged.append(mc)
        prepared.extend(p)
    n_feat = len(rec.features.feature_names)
    return CandidateSet(
        list(completions),
        prepared,
        MergedBatch.from_lists(merged, rec.source_names),
        np.concatenate(xs) if xs else np.empty((0, n_feat), np.float32),
        np.concatenate(labels) if labels else np.empty(0, np.float32),
    )


def generator_lists(
    rec: Recommender, prepared: Sequence[PreparedBasket], k: int = K
) -> dict[str, list[list[int]]]:
    """Each generator alone (a baseline, not the served list): its own top-k per basket."""
    return {g.name: _generator_top(g, prepared, k) for g in rec.generators}


def popularity_lists(
    rec: Recommender, prepared: Sequence[PreparedBasket], at_ts: int, k: int = K
) -> list[list[int]]:
    """Most bought items in the 30 days before ``at_ts``, minus each basket's items."""
    pop = (
        rec.features.popularity(at_ts, 30)
        if rec.features is not None
        else np.zeros(len(rec.catalog))
    )
    order = np.argsort(-pop, kind="stable")[: k + 200]
    out = []
    for p in prepared:
        excl = set(p.exclude.tolist())
        out.append([int(r) for r in order if int(r) not in excl][:k])
    return out


def list_metrics(
    rec: Recommender,
    lists: Sequence[Sequence[int]],
    completions: Sequence[Completion],
    prepared: Sequence[PreparedBasket],
    k: int = K,
    true_styles: Sequence[str | None] | None = None,
    item_style: dict[int, str | None] | None = None,
) -> dict[str, float]:
    """Accuracy (recall, ndcg, hit rate, mrr against each basket's hidden items) and
    beyond-accuracy figures (coverage, cross-category share, style coherence) of ``lists``."""
    hidden = [c.hidden.tolist() for c in completions]
    cats = rec.catalog.category_codes
    out = {
        f"recall@{k}": M.mean_metric(M.recall_at_k, lists, hidden, k),
        f"ndcg@{k}": M.mean_metric(M.ndcg_at_k, lists, hidden, k),
        f"hit_rate@{k}": M.mean_metric(M.hit_rate_at_k, lists, hidden, k),
        "mrr": M.mean_metric(lambda a, b, kk: M.mrr(a, b, kk), lists, hidden, k),
        "coverage": M.catalog_coverage(lists, len(rec.catalog)),
    }
    if rec.catalog.has_categories:
        basket_cats = [{int(cats[r]) for r in p.rows if cats[r] >= 0} for p in prepared]
        item_cat = {r: (int(cats[r]) if cats[r] >= 0 else None) for lst in lists for r in lst}
        out["cross_category_share"] = M.cross_category_share(lists, basket_cats, item_cat)
    if true_styles is not None and item_style is not None:
        out["style_coherence"] = M.style_coherence(lists, true_styles, item_style)
    return out


SERVED = "ranker"  # the report's name for the served list (the full pipeline)
NO_RANKER = "merged candidates (no ranker)"
# The simplest use of who the shopper is, next to the served list's shopper-history features:
# their own earlier items first (most often, then most recently bought), EASE's list after.
REPEAT_THEN_EASE = "repeat then ease"


def evaluate(
    rec: Recommender,
    orders: OrderTable,
    completions: Sequence[Completion],
    window_start_ts: int,
    *,
    k: int = K,
    variants: Mapping[str, Recommender] | None = None,
    references: Sequence[CandidateGenerator] = (),
    repeat_reference: CandidateGenerator | None = None,
    ground_truth: pd.DataFrame | None = None,
    rules: AccessoryRules | None = None,
    output_dir: Path | None = None,
    item_truth: pd.DataFrame | None = None,
) -> EvaluationResult:
    """Measure every method on the same held-out baskets.

    The served figures are those of ``rec.recommend_batch`` on the storefront's request for
    each basket: the list a shopper gets, through the same steps as the API. Next to it:
    popularity, each generator alone, ``references`` (baseline models fitted on the same
    window, e.g. EASE when the pipeline does not use it) alone, ``repeat_reference`` (the
    shopper's earlier items, as the model knows them) followed by EASE's list, the pipeline with the ranker
    off and without the category cap, and ``variants`` (name -> another recommender, e.g.
    an ablation ranker), each through ``recommend_batch`` too. ``ground_truth`` (sample world)
    adds style coherence and accessory recall at checkout."""
    requests = completion_requests(rec, orders, completions, k=k, at_order_time=False)
    prepared = rec.prepare(requests)
    lists: dict[str, list[list[int]]] = {
        "popularity": popularity_lists(rec, prepared, window_start_ts, k)
    }
    for name, gl in generator_lists(rec, prepared, k).items():
        lists[f"{name} alone"] = gl
    for ref in references:
        lists[f"{ref.name} alone"] = _generator_top(ref, prepared, k)
    ease = lists.get("ease alone", lists.get("ease (reference) alone"))
    if repeat_reference is not None and ease is not None:
        repeat = _generator_top(repeat_reference, prepared, k)
        lists[REPEAT_THEN_EASE] = [
            list(dict.fromkeys(r + e))[:k] for r, e in zip(repeat, ease, strict=True)
        ]
    served_name = SERVED if rec.uses_ranker() else NO_RANKER
    lists[served_name] = rec.top_rows(requests)
    if served_name == SERVED:
        lists[NO_RANKER] = rec.top_rows(requests, knobs=PipelineKnobs(ranker=False))
        lists["ranker (no category cap)"] = rec.top_rows(
            requests, knobs=PipelineKnobs(max_per_category=0)
        )
    for name, variant in (variants or {}).items():
        lists[name] = variant.top_rows(requests)
    true_styles = item_style = None
    gt = None
    if ground_truth is not None:
        gt = ground_truth.set_index("order_id")
        order_ids = [orders.order_ids[c.order] for c in completions]
        true_styles = [
            (
                gt.at[o, "order_style"]
                if o in gt.index and isinstance(gt.at[o, "order_style"], str)
                else None
            )
            for o in order_ids
        ]
        item_style = _true_item_styles(rec, item_truth)
    baselines = {
        name: list_metrics(rec, lst, completions, prepared, k, true_styles, item_style)
        for name, lst in lists.items()
    }
    if gt is not None:
        _accessory_metrics(
            rec,
            completions,
            orders,
            gt,
            rules,
            baselines,
            window_start_ts,
            k,
            served_name,
            references,
        )
    served = baselines[served_name]
    result = EvaluationResult(
        metrics=dict(served),
        baselines=baselines,
        n_baskets=len(completions),
        protocol=__doc__.split("Protocol:")[1].strip() if __doc__ else "",
        served_requests=requests,
        served_lists=lists[served_name],
    )
    if output_dir is not None:
        result.figures = _plots(baselines, Path(output_dir), k)
    result.report_markdown = report_markdown(result, k)
    return result


def _generator_top(
    gen: CandidateGenerator, prepared: Sequence[PreparedBasket], k: int
) -> list[list[int]]:
    queries = [p.query() for p in prepared]
    out: list[list[int]] = []
    for i in range(0, len(queries), 1000):
        rows, _ = gen.generate(queries[i : i + 1000], k)
        out.extend([[int(r) for r in row if r >= 0] for row in rows])
    return out


def _true_item_styles(rec: Recommender, item_truth: pd.DataFrame | None) -> dict[int, str | None]:
    """Each item's true style: from ``item_truth`` (sku, true_styles: the sample world's
    answer; items with several or no true styles count as unstyled), else its single tag."""
    frame = rec.catalog.frame
    out: dict[int, str | None] = {}
    if item_truth is not None:
        for sku, styles in zip(item_truth["sku"], item_truth["true_styles"], strict=True):
            r = rec.catalog.ids.get(str(sku))
            if r >= 0:
                st = list(styles) if styles is not None else []
                out[r] = st[0] if len(st) == 1 else None
        return out
    attrs = frame["attributes"].to_numpy(object)
    tags = frame["styles"].to_numpy(object)
    for i in range(len(frame)):
        a = attrs[i] or {}
        s = a.get("true_style") if isinstance(a, dict) else None
        if not s and len(tags[i]) == 1:
            s = tags[i][0]
        out[i] = s or None
    return out


def _accessory_metrics(
    rec: Recommender,
    completions: Sequence[Completion],
    orders: OrderTable,
    gt: pd.DataFrame,
    rules: AccessoryRules | None,
    baselines: dict[str, dict[str, float]],
    window_start: int,
    k: int,
    served_name: str = SERVED,
    references: Sequence[CandidateGenerator] = (),
) -> None:
    """Accessory recall at checkout: forgotten SKUs (ground truth) among what checkout shows
    for the whole order. For the full pipeline: the item list plus the rule slots; for
    baselines: their list. ``*_category_*`` variants count a forgotten accessory found when an
    item of its category is shown (a rule suggests a category; the SKU choice is a guess)."""
    forgotten: list[list[int]] = []
    forgotten_cats: list[list[str]] = []
    full_baskets = []
    for c in completions:
        o = orders.order_ids[c.order]
        skus = gt.at[o, "forgotten_skus"] if o in gt.index else []
        cats = gt.at[o, "forgotten_categories"] if o in gt.index else []
        rows, _ = rec.catalog.ids.rows([str(s) for s in (skus if skus is not None else [])])
        forgotten.append(rows.tolist())
        forgotten_cats.append([str(x) for x in (cats if cats is not None else [])])
        full_baskets.append(orders.items_of(c.order))
    if not any(forgotten):
        return
    # checkout sees the whole order as the basket
    reqs = []
    for items, qty in full_baskets:
        basket = tuple(
            BasketLine(str(rec.catalog.skus[r]), int(q)) for r, q in zip(items, qty, strict=True)
        )
        reqs.append(
            RecommendationRequest(
                basket=basket,
                page="checkout",
                k=k,
                filters=NO_FILTERS,  # no time: the served model's "now", as for the items
            )
        )
    recs = rec.recommend_batch(reqs, rules=rules)
    ids = rec.catalog.ids
    cat_names = rec.catalog.frame["category"].to_numpy(object)
    items_only = [[ids.row(i.sku) for i in r.items] for r in recs]
    slots = [[ids.row(a.sku) for a in r.accessories] for r in recs]
    with_slots = [a + b for a, b in zip(items_only, slots, strict=True)]

    def cats_of(lists_: list[list[int]]) -> list[list[str]]:
        return [[str(cat_names[r]) for r in lst if cat_names[r]] for lst in lists_]

    served = baselines.setdefault(served_name, {})
    served["accessory_recall"] = M.accessory_recall(with_slots, forgotten)
    served["accessory_recall_items_only"] = M.accessory_recall(items_only, forgotten)
    served["accessory_category_recall"] = M.accessory_recall(cats_of(with_slots), forgotten_cats)
    n_slots = sum(len(s) for s in slots)
    slot_hits = sum(len(set(s) & set(f)) for s, f in zip(slots, forgotten, strict=True))
    slot_cat_hits = sum(
        sum(c in set(fc) for c in sc) for sc, fc in zip(cats_of(slots), forgotten_cats, strict=True)
    )
    served["accessory_slot_precision"] = slot_hits / n_slots if n_slots else 0.0
    served["accessory_slot_category_precision"] = slot_cat_hits / n_slots if n_slots else 0.0
    served["accessory_slots_per_basket"] = n_slots / max(len(recs), 1)
    # baselines answer the same full-order checkout baskets with their own top-k
    prepared = rec.prepare(reqs)
    base_lists = {f"{n} alone": v for n, v in generator_lists(rec, prepared, k).items()}
    for ref in references:
        base_lists[f"{ref.name} alone"] = _generator_top(ref, prepared, k)
    base_lists["popularity"] = popularity_lists(rec, prepared, window_start, k)
    for name, lst in base_lists.items():
        if name in baselines:
            baselines[name]["accessory_recall"] = M.accessory_recall(lst, forgotten)
            baselines[name]["accessory_category_recall"] = M.accessory_recall(
                cats_of(lst), forgotten_cats
            )


def _plots(baselines: dict[str, dict[str, float]], out: Path, k: int) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    names = list(baselines)
    figs = {}
    for metric in (f"recall@{k}", f"ndcg@{k}"):
        vals = [baselines[n].get(metric, 0.0) for n in names]
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
        ax.barh(names, vals, color=["C3" if n == SERVED else "C0" for n in names])
        ax.invert_yaxis()
        ax.set_xlabel(metric)
        ax.set_title(f"{metric} on the held-out window")
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.3f}", va="center", fontsize=8)
        fig.tight_layout()
        path = out / f"{metric.replace('@', '_at_')}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        figs[metric] = path
    return figs


def report_markdown(result: EvaluationResult, k: int = K) -> str:
    """A Markdown table of every method's metrics."""
    cols: list[str] = []
    for m in result.baselines.values():
        for c in m:
            if c not in cols:
                cols.append(c)
    lines = [
        f"Held-out baskets: {result.n_baskets}. {result.protocol}",
        "",
        "| method | " + " | ".join(cols) + " |",
        "| --- | " + " | ".join("---:" for _ in cols) + " |",
    ]
    for name, m in result.baselines.items():
        cells = [f"{m[c]:.4f}" if c in m else "" for c in cols]
        label = f"**{name}**" if name == SERVED else name
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for name, path in result.figures.items():
        lines.append(f"\n![{name}]({path.name})")
    return "\n".join(lines) + "\n"
