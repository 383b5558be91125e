"""Ranker and candidate-pool variants measured on the VALIDATION window only (issue 10).

    python -m experiments.quality_validation --data online-retail --seeds 1 2 --variants base xendcg

The evaluation window of the full data is dropped first (``training.tune.validation_data``);
the pipeline is then fitted exactly as ``recsys tune`` fits a trial (``cutoff`` = the
validation cut: generators | ranker examples | early stopping split the orders before it),
and every variant is scored on the validation window's held-out baskets. Nothing here reads
the evaluation window, so a setting chosen from this table is chosen on validation.

Cost control: the expensive part (fit generators, candidates + features of the ranker,
early-stopping and validation baskets) is built once per seed and cached under ``--cache``;
ranker variants then refit only LightGBM on the cached matrices. The served list on a data
set without categories or styles (Online Retail) is the candidates ordered by ranker score,
so the top 10 by score is what ``recommend_batch`` returns; ``--check-served`` confirms it
for the base variant through ``Recommender.top_rows``.

``--refit`` also scores the trained rankers with generators and statistics refitted on every
order before the validation window, as the served bundle is (``refit_generators``), next to
each generator alone fitted on the same orders.

Extra-feature variants (``norm``...) compute candidate-list-relative features from the
cached matrix (per basket: score / max, score - max, rank within the candidate list) for
screening; a kept one is then defined in ``feature_store.definitions``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

log = logging.getLogger("quality_validation")
K = 10
REPORT_DIR = Path(__file__).parent / "reports" / "quality_validation"
NORM_SOURCES = ("ease", "rp3beta", "item_knn", "co_purchase", "cf")


@dataclass
class Split:
    X: np.ndarray
    y: np.ndarray
    ptr: np.ndarray  # query_ptr over X rows
    rows: np.ndarray  # candidate catalog rows
    hidden: list[np.ndarray]


def _cs_split(cs: Any) -> Split:
    return Split(
        cs.X,
        cs.labels,
        np.asarray(cs.query_ptr),
        np.asarray(cs.cand_rows),
        [c.hidden for c in cs.completions],
    )


def build(data: str, seed: int, config_path: Path | None, cache: Path) -> dict[str, Any]:
    """Fit the pipeline up to the feature matrices on the validation protocol (cached)."""
    from experiments.offline_eval import ONLINE_RETAIL, _load
    from feature_store import load_pipeline_config
    from feature_store.definitions import FEATURE_SETS
    from recsys.data.orders import build_orders
    from training.evaluation import build_candidate_set
    from training.fit import _fit_components, _fit_style
    from training.splits import hide_for_ranker, hide_items, window_cuts, window_masks
    from training.tune import validation_data

    config = load_pipeline_config(config_path)
    key = f"{data}-{config.hash}-fs{FEATURE_SETS[config.feature_set]}-seed{seed}"
    path = cache / f"{key}.npz"
    catalog, interactions, gt, item_truth, rules_parts = _load(data, 50_000, 7, ONLINE_RETAIL)
    vd = validation_data(catalog, interactions, config)
    orders = build_orders(vd.interactions, catalog)
    tc = config.training
    shares = (tc.generator_share, tc.ranker_share, tc.validation_share, tc.evaluation_share)
    cuts = window_cuts(orders.ts, shares, vd.validation_cut)
    win_a, win_b, win_c, win_d = (orders.subset(m) for m in window_masks(orders.ts, cuts))
    rng_train, rng_val, rng_neg, rng_eval = (np.random.default_rng([seed, i]) for i in range(4))
    t = time.perf_counter()
    style_model, item_styles, info = _fit_style(catalog, config, win_a, seed)
    # as in fit_recommender: the model knows nothing from the scored (validation) window on
    known = orders.before(cuts[-1])
    rec, _ = _fit_components(catalog, config, win_a, known, style_model, item_styles, info, seed)
    train_c = hide_for_ranker(
        win_b, tc.hide_fraction, rng_train, tc.max_train_orders, tc.ranker_hide_draws
    )
    es_c = hide_items(win_c, tc.hide_fraction, rng_val, tc.max_validation_orders)
    val_c = hide_items(win_d, tc.hide_fraction, rng_eval, tc.max_eval_orders)
    out: dict[str, Any] = {"rec": rec, "config": config, "orders": (win_b, win_c, win_d)}
    out["completions"] = (train_c, es_c, val_c)
    out["rng_neg"] = rng_neg
    out["before_val"] = known
    out["catalog"] = catalog
    out["truth"] = (gt, item_truth, rules_parts)
    out["validation_start"] = int(cuts[-1])
    out["windows"] = {n: len(w) for n, w in zip("abcd", (win_a, win_b, win_c, win_d), strict=True)}
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        for name, comp in zip(("train", "es", "val"), out["completions"], strict=True):
            out[name] = Split(
                z[f"{name}_X"],
                z[f"{name}_y"],
                z[f"{name}_ptr"],
                z[f"{name}_rows"],
                [c.hidden for c in comp],
            )
        log.info("loaded cached matrices %s", path)
        return out
    for name, w, comp in (
        ("train", win_b, train_c),
        ("es", win_c, es_c),
        ("val", win_d, val_c),
    ):
        out[name] = _cs_split(build_candidate_set(rec, w, comp))
    log.info("built matrices in %.1fs", time.perf_counter() - t)
    cache.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name in ("train", "es", "val"):
        s = out[name]
        arrays |= {f"{name}_X": s.X, f"{name}_y": s.y, f"{name}_ptr": s.ptr, f"{name}_rows": s.rows}
    np.savez(path, **arrays)
    return out


def per_query_norm(
    X: np.ndarray, ptr: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, list[str]]:
    """Candidate-list-relative columns of each source score: score / max, score - max, and
    the 1-based rank of the score within the basket's candidates (NaN scores last)."""
    cols, new = [], []
    q = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    for src in NORM_SOURCES:
        name = f"{src}_score"
        if name not in names:
            continue
        x = X[:, names.index(name)].astype(np.float64)
        filled = np.where(np.isnan(x), -np.inf, x)
        mx = np.full(len(ptr) - 1, -np.inf)
        np.maximum.at(mx, q, filled)
        mxq = mx[q]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isfinite(mxq) & (mxq > 0), x / mxq, np.nan)
            gap = x - mxq
        # rank within the query: sort by (query, -score)
        order = np.lexsort((-filled, q))
        rank = np.empty(len(x))
        starts = ptr[:-1]
        pos = np.arange(len(x)) - np.repeat(starts, np.diff(ptr))
        rank[order] = pos + 1
        cols += [ratio, np.where(np.isfinite(gap), gap, np.nan), rank]
        new += [f"{src}_score_rel", f"{src}_score_gap", f"{src}_score_list_rank"]
    return np.column_stack([X, *cols]).astype(np.float32), new


def groups(s: Split, X: np.ndarray, negatives: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """training.fit._groups on a cached split."""
    from training.fit import _groups

    class _CS:
        pass

    cs = _CS()
    cs.X, cs.labels, cs.query_ptr = X, s.y, s.ptr  # type: ignore[attr-defined]
    return _groups(cs, negatives, rng)  # type: ignore[arg-type]


def top_lists(scores: np.ndarray, s: Split, k: int = K) -> list[list[int]]:
    out = []
    for q in range(len(s.ptr) - 1):
        lo, hi = int(s.ptr[q]), int(s.ptr[q + 1])
        o = np.argsort(-scores[lo:hi], kind="stable")[:k]
        out.append(s.rows[lo:hi][o].tolist())
    return out


def list_scores(lists: list[list[int]], s: Split) -> dict[str, float]:
    from training import metrics as M

    hidden = [h.tolist() for h in s.hidden]
    return {
        "recall@10": M.mean_metric(M.recall_at_k, lists, hidden, K),
        "ndcg@10": M.mean_metric(M.ndcg_at_k, lists, hidden, K),
    }


VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "neg0": {"negatives": 0},
    "neg100": {"negatives": 100},
    "xendcg": {"objective": "rank_xendcg"},
    "binary": {"objective": "binary"},
    "trunc10": {"lgb": {"lambdarank_truncation_level": 10}},
    "trunc50": {"lgb": {"lambdarank_truncation_level": 50}},
    "leaves15": {"params": {"num_leaves": 15}},
    "leaves63": {"params": {"num_leaves": 63}},
    "mdl100": {"params": {"min_data_in_leaf": 100}},
    "lr02_600": {
        "params": {"learning_rate": 0.02, "n_estimators": 600, "early_stopping_rounds": 50}
    },
    "lr05_600": {"params": {"n_estimators": 600, "early_stopping_rounds": 50}},
    "norm": {"norm": True},
    "norm_lr05_600": {"norm": True, "params": {"n_estimators": 600, "early_stopping_rounds": 50}},
}


class _Ranker:
    """LightGBMRanker with overridable objective / extra LightGBM params (screening only)."""

    @staticmethod
    def make(config: Any, seed: int, v: dict[str, Any]):  # type: ignore[no-untyped-def]
        from recsys.ranking.ranker import LightGBMRanker

        params = {**dict(config.ranker.params), **v.get("params", {})}
        r = LightGBMRanker(**params, seed=seed)
        base_params = r._params
        extra = dict(v.get("lgb", {}))
        if "objective" in v:
            extra["objective"] = v["objective"]
            if v["objective"] == "binary":
                extra["metric"] = "ndcg"

        def _params() -> dict[str, Any]:
            return {**base_params(), **extra}

        r._params = _params  # type: ignore[method-assign]
        return r


def run_variant(built: dict[str, Any], name: str, seed: int) -> dict[str, Any]:
    v = VARIANTS[name]
    config = built["config"]
    names = tuple(built["rec"].features.feature_names)
    tr, es, va = built["train"], built["es"], built["val"]
    Xt, Xe, Xv = tr.X, es.X, va.X
    fnames = names
    if v.get("norm"):
        Xt, extra = per_query_norm(Xt, tr.ptr, names)
        Xe, _ = per_query_norm(Xe, es.ptr, names)
        Xv, _ = per_query_norm(Xv, va.ptr, names)
        fnames = names + tuple(extra)
    neg = v.get("negatives", config.training.negatives_per_basket)
    rng = np.random.default_rng([seed, 2])
    X, y, g = groups(tr, Xt, neg, rng)
    Xes, yes, ges = groups(es, Xe, neg, rng)
    t = time.perf_counter()
    ranker = _Ranker.make(config, seed, v).fit(X, y, g, fnames, Xes, yes, ges)
    fit_s = time.perf_counter() - t
    scores = ranker.predict(Xv)
    res = list_scores(top_lists(scores, va), va)
    res |= {"best_iteration": ranker.best_iteration_, "fit_s": round(fit_s, 1), "rows": len(y)}
    res["top_features"] = list(ranker.feature_importance())[:8]
    built.setdefault("rankers", {})[name] = ranker
    return res


def reference_scores(built: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each generator alone and the merged pool's recall on the validation baskets."""
    from training.evaluation import completion_requests, generator_lists

    rec = built["rec"]
    win_d = built["orders"][2]
    val_c = built["completions"][2]
    va: Split = built["val"]
    prepared = rec.prepare(completion_requests(rec, win_d, val_c))
    out = {f"{n} alone": list_scores(lst, va) for n, lst in generator_lists(rec, prepared).items()}
    hit = [np.isin(h, va.rows[va.ptr[q] : va.ptr[q + 1]]).mean() for q, h in enumerate(va.hidden)]
    out["candidate pool recall"] = {
        "recall@all": float(np.mean(hit)),
        "pool": float(np.mean(np.diff(va.ptr))),
    }
    return out


def check_served(built: dict[str, Any], seed: int) -> dict[str, float]:
    """The base ranker's lists through ``Recommender.top_rows`` (the served path)."""
    from training.evaluation import completion_requests

    rec = built["rec"].replace(ranker=built["rankers"]["base"])
    reqs = completion_requests(rec, built["orders"][2], built["completions"][2])
    return list_scores(rec.top_rows(reqs), built["val"])


def served_scores(
    built: dict[str, Any], variant: str, knobs: Any = None
) -> dict[str, dict[str, float]]:
    """The served list of the trained ``variant`` ranker on the validation baskets through
    ``training.evaluation.evaluate`` (``Recommender.recommend_batch``: category cap, complete
    the look slots, accessory section), with the beyond-accuracy figures the offline report
    gives on the sample world: style coherence, accessory recall at checkout (default rules).
    ``knobs``: a ``PipelineKnobs`` for the served list (e.g. another ``style_slots``)."""
    from experiments.offline_eval import _LazyRules
    from training.evaluation import evaluate

    gt, item_truth, rules_parts = built["truth"]
    rec = built["rec"].replace(ranker=built["rankers"][variant])
    if knobs is not None:
        rec = rec.replace(knobs=knobs)
    rules = None
    if rules_parts is not None:
        engine_cls, default_rules = rules_parts
        rules = _LazyRules(engine_cls, default_rules(), built["catalog"])
    res = evaluate(
        rec,
        built["orders"][2],
        built["completions"][2],
        built["validation_start"],
        ground_truth=gt,
        rules=rules,
        item_truth=item_truth,
    )
    return res.baselines


def refit_scores(built: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """What the served bundle does (``refit_generators``): generators and statistics refitted
    on every order before the validation window, the rankers trained as above; next to each
    generator alone fitted on the same orders."""
    from training.evaluation import build_candidate_set, completion_requests, generator_lists
    from training.fit import _fit_components, _fit_style

    config, catalog = built["config"], built["catalog"]
    abc = built["before_val"]
    sm, styles, info = _fit_style(catalog, config, abc, seed)
    rec, _ = _fit_components(catalog, config, abc, abc, sm, styles, info, seed)
    win_d, val_c = built["orders"][2], built["completions"][2]
    va = _cs_split(build_candidate_set(rec, win_d, val_c))
    prepared = rec.prepare(completion_requests(rec, win_d, val_c))
    rows = [
        {"variant": f"refit: {n} alone", **list_scores(lst, va)}
        for n, lst in generator_lists(rec, prepared).items()
    ]
    for name, ranker in built.get("rankers", {}).items():
        if VARIANTS[name].get("norm"):
            continue
        rows.append(
            {"variant": f"refit: {name}", **list_scores(top_lists(ranker.predict(va.X), va), va)}
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", choices=("sample", "online-retail"), default="online-retail")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--variants", nargs="+", default=["base"], choices=sorted(VARIANTS))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/quality_validation_cache"))
    ap.add_argument("--references", action="store_true", help="generators alone, pool recall")
    ap.add_argument("--check-served", action="store_true")
    ap.add_argument("--refit", action="store_true", help="also score with refitted generators")
    ap.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    ap.add_argument(
        "--served",
        action="store_true",
        help="each variant's served list (recommend_batch) with style coherence and accessory "
        "recall (sample world), next to the stand-alone baselines",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for seed in args.seeds:
        built = build(args.data, seed, args.config, args.cache)

        def emit(row: dict[str, Any]) -> None:
            row |= {"config": str(args.config or "default"), "data": args.data}
            print(json.dumps(row, default=str), flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(row, default=str) + "\n")

        if args.references:
            for n, m in reference_scores(built).items():
                emit({"seed": seed, "variant": n, **m})
        for name in args.variants:
            emit({"seed": seed, "variant": name, **run_variant(built, name, seed)})
            if args.served:
                for method, m in served_scores(built, name).items():
                    if method == "ranker" or method.endswith("alone") and "ease" in method:
                        emit({"seed": seed, "variant": f"served {name}: {method}", **m})
        if args.check_served and "base" in built.get("rankers", {}):
            emit({"seed": seed, "variant": "base via top_rows", **check_served(built, seed)})
        if args.refit:
            for row in refit_scores(built, seed):
                emit({"seed": seed, **row})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
