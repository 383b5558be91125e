"""Fixed baskets on a fixed bundle, and what the pipeline answers for them: the reference the
hot-path equality test (``test_hot_path_parity.py``) compares against.

The expected answers (``hot_path_expected.json``) were first written by the code *before* the
hot path was made cheap (issue 11) and proved those changes answer-neutral; they were
re-recorded once after the intended changes that followed (EASE/RP3beta generators, feature set
v2, one accessory section, the sample world's skirting boards), once more when the feature
matrix's exact hash became a fingerprint compared with a tolerance (items, scores, sources,
reasons and accessories unchanged), and for feature set v3 (the shopper's own history of each
candidate: the feature matrices and the ranker change). Regenerate them only for an intended
change of answers:

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m tests.serving.hot_path_cases --write
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
EXPECTED = HERE / "hot_path_expected.json"
N_BASKETS = 40


def build_bundle(out: Path) -> Path:
    """The small serving-test pipeline fitted on the sample world (seed 7, 2,500 orders)."""
    from feature_store import load_pipeline_config
    from recsys.sample_world import generate_world
    from training.fit import fit_recommender

    world = generate_world(seed=7, n_orders=2500)
    config = load_pipeline_config(HERE / "pipeline_small.yaml")
    fit_recommender(world.catalog, world.interactions, config, seed=7).recommender.save(out)
    return out


def requests_for(rec: Any) -> list[Any]:  # noqa: ANN401 - a Recommender
    """Deterministic baskets over the bundle's catalog, covering the request's options."""
    from recsys.recommendation import BasketLine, Filters, RecommendationRequest, UserContext

    skus = [str(s) for s in rec.catalog.skus]
    cats = list(rec.catalog.categories)
    users = rec.user_index.to_list()
    rng = np.random.default_rng(11)
    out = []
    for i in range(N_BASKETS):
        size = int(rng.integers(1, 9))
        basket = tuple(
            BasketLine(skus[int(r)], int(rng.integers(1, 4)))
            for r in rng.choice(len(skus), size, replace=False)
        )
        kw: dict[str, Any] = {
            "page": ("cart", "checkout", "product")[i % 3],
            "k": (10, 5, 20)[i % 3],
        }
        if i % 5 == 1:
            kw["filters"] = Filters(in_stock=True, max_price=float(rng.uniform(20, 400)))
        if i % 7 == 2 and cats:
            kw["filters"] = Filters(
                in_stock=False, categories=tuple(rng.choice(cats, 3, replace=False))
            )
        if i % 6 == 3:
            kw["exclude_skus"] = tuple(
                skus[int(r)] for r in rng.choice(len(skus), 5, replace=False)
            )
        if i % 8 == 4 and users:
            kw["user_id"] = users[int(rng.integers(len(users)))]
        if i % 9 == 5:
            basket = basket + (BasketLine("NOT-A-SKU", 1),)
        if i % 10 == 6:
            kw["user_context"] = UserContext(style_affinity={rec.catalog.taxonomy.slugs[0]: 1.0})
        out.append(RecommendationRequest(basket=basket, **kw))
    # an empty basket with recent views, and an empty one with nothing to go on
    out.append(
        RecommendationRequest(basket=(), user_context=UserContext(recent_skus=tuple(skus[:3])))
    )
    out.append(RecommendationRequest(basket=()))
    return out


def features_fingerprint(x: np.ndarray) -> list[float]:
    """One number per candidate row: the row against fixed random weights (seeded), plus one per
    column: its sum and its count of missing values. Compared with a relative tolerance, because the style model's L-BFGS fit
    differs in the 8th digit between CPUs (an exact hash of the bytes failed on another machine
    with identical items and scores); any real change of a feature moves these far more."""
    x = np.asarray(x, np.float64)
    missing = np.isnan(x)  # LightGBM's "missing": counted per column, then a fixed stand-in
    x = np.where(missing, -999.0, x)
    weights = np.random.default_rng(3).normal(size=x.shape[1])
    return (
        [float(v) for v in x @ weights]
        + [float(v) for v in x.sum(axis=0)]
        + [float(v) for v in missing.sum(axis=0)]
    )


def answers(rec: Any) -> list[dict]:  # noqa: ANN401 - a Recommender
    """Items (sku, score, sources, reason), accessories, style and the ranker's input per request."""
    out = []
    for req in requests_for(rec):
        r = rec.recommend(req)
        entry: dict[str, Any] = {
            "items": [[i.sku, float(i.score), list(i.sources), i.reason] for i in r.items],
            "accessories": [[a.sku, a.rule_id] for a in r.accessories],
            "style": [r.style.top, float(r.style.confidence)],
            "unknown": list(r.unknown_skus),
        }
        if len(req.basket):
            rows, _, X = rec.candidate_features(req)
            entry["candidates"] = [int(x) for x in rows]
            entry["features_shape"] = list(X.shape)
            entry["features_fingerprint"] = features_fingerprint(X)
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--write", action="store_true", help=f"write {EXPECTED.name}")
    args = ap.parse_args(argv)
    from feature_store import load_recommender

    with tempfile.TemporaryDirectory() as tmp:
        rec = load_recommender(build_bundle(Path(tmp) / "bundle"))
        got = answers(rec)
    text = json.dumps(got, indent=0)
    if args.write:
        EXPECTED.write_text(text + "\n")
        print(f"wrote {len(got)} answers to {EXPECTED}")
    else:
        print(text[:2000])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
