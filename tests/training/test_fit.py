"""fit_recommender on a small sample world: stages, held-out quality against popularity, the
Recommender's request behaviour, bundle save/load and bad bundles, config validation."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from feature_store import load_pipeline_config, load_recommender
from recsys.bundle import BundleError
from recsys.config import ConfigError, parse_pipeline_config
from recsys.recommendation import BasketLine, Filters, RecommendationRequest

pytestmark = pytest.mark.slow  # fits a pipeline on a small sample world

SMALL = {
    "version": 1,
    "candidates": {
        "total": 60,
        "generators": [
            {"name": "item_knn", "quota": 25, "params": {"weighting": "bm25"}},
            {"name": "co_purchase", "quota": 20},
            {"name": "cf", "quota": 10, "params": {"model": "als", "factors": 8, "iterations": 3}},
            {"name": "style", "quota": 10},
            {"name": "popular", "quota": 10},
        ],
    },
    "ranker": {
        "params": {"n_estimators": 30, "num_leaves": 7, "learning_rate": 0.1, "min_data_in_leaf": 5}
    },
    "training": {"max_train_orders": 800, "max_validation_orders": 250, "max_eval_orders": 300},
}


@pytest.fixture(scope="module")
def world():
    from recsys.sample_world import generate_world

    return generate_world(seed=11, n_orders=2000)


@pytest.fixture(scope="module")
def fitted(world, tmp_path_factory):
    from training.fit import fit_recommender

    out = tmp_path_factory.mktemp("eval")
    return fit_recommender(
        world.catalog,
        world.interactions,
        parse_pipeline_config(SMALL),
        seed=4,
        ground_truth=world.ground_truth,
        item_truth=world.item_styles,
        output_dir=out,
    )


def _req(world, rows, **kw) -> RecommendationRequest:
    skus = world.catalog.skus
    return RecommendationRequest(basket=tuple(BasketLine(str(skus[r])) for r in rows), **kw)


def test_fit_runs_every_stage_and_reports(fitted):
    assert list(fitted.stage_seconds) == [
        "split",
        "style_model",
        "generators",
        "ranker_examples",
        "ranker",
        "evaluation",
        "refit",
        "mined_rules",
    ]
    m = fitted.evaluation.metrics
    for key in ("recall@10", "ndcg@10", "hit_rate@10", "mrr", "coverage", "style_coherence"):
        assert 0.0 <= m[key] <= 1.0
    assert fitted.evaluation.figures and all(p.exists() for p in fitted.evaluation.figures.values())
    assert "| **ranker** |" in fitted.evaluation.report_markdown
    assert fitted.feature_importance


def test_ranker_beats_popularity_on_held_out_orders(fitted):
    b = fitted.evaluation.baselines
    assert b["ranker"]["recall@10"] > b["popularity"]["recall@10"]
    assert b["ranker"]["ndcg@10"] > b["popularity"]["ndcg@10"]
    assert b["ranker"]["recall@10"] > b["merged candidates (no ranker)"]["recall@10"]


def test_request_behaviour(world, fitted):
    rec = fitted.recommender
    cat = world.catalog
    r = rec.recommend(
        RecommendationRequest(
            basket=(
                BasketLine(str(cat.skus[0])),
                BasketLine("NOT-A-SKU"),
                BasketLine(str(cat.skus[7])),
            ),
            k=8,
        )
    )
    assert r.unknown_skus == ("NOT-A-SKU",)
    assert 0 < len(r.items) <= 8
    skus = [i.sku for i in r.items]
    assert len(set(skus)) == len(skus)
    assert not {str(cat.skus[0]), str(cat.skus[7])} & set(skus)
    assert all(i.reason and i.sources for i in r.items)
    assert set(r.timings_ms) >= {"candidates", "features", "ranker", "total"}
    in_stock = set(cat.skus[cat.in_stock])
    assert set(skus) <= in_stock
    # exclusions and filters
    excl = skus[:2]
    r2 = rec.recommend(_req(world, [0, 7], k=8, exclude_skus=tuple(excl)))
    assert not set(excl) & {i.sku for i in r2.items}
    cheap = rec.recommend(_req(world, [0, 7], k=8, filters=Filters(max_price=20.0)))
    assert all(cat.prices[cat.ids.row(i.sku)] <= 20.0 for i in cheap.items)
    one_cat = cat.categories[0]
    rc = rec.recommend(_req(world, [0, 7], k=5, filters=Filters(categories=(one_cat,))))
    assert all(cat.frame["category"].iat[cat.ids.row(i.sku)] == one_cat for i in rc.items)
    # empty basket -> popular; huge k is safe
    empty = rec.recommend(RecommendationRequest(basket=(), k=5))
    assert len(empty.items) == 5 and empty.style.top is None
    big = rec.recommend(_req(world, [0], k=10_000))
    assert len(big.items) <= len(cat)
    # a deadline already passed skips the ranker and says so
    d = rec.recommend(_req(world, [0, 7]), deadline=time.perf_counter())
    assert d.degraded and d.degraded_reason == "ranker skipped: latency budget" and d.items


def test_batch_equals_single(world, fitted):
    rec = fitted.recommender
    reqs = [_req(world, [i, i + 40], k=6) for i in range(0, 200, 25)]
    batch = rec.recommend_batch(reqs)
    for req, b in zip(reqs, batch, strict=True):
        s = rec.recommend(req)
        assert [i.sku for i in s.items] == [i.sku for i in b.items]
        np.testing.assert_allclose(
            [i.score for i in s.items], [i.score for i in b.items], rtol=1e-9
        )


def test_checkout_fills_accessory_slots_from_rules(world, fitted):
    from recsys.rules.engine import RuleEngine
    from recsys.rules.rules_file import default_rules

    rec = fitted.recommender
    engine = RuleEngine.compile(default_rules(), world.catalog, rec.item_styles)
    paint = [i for i, c in enumerate(world.catalog.frame["category"]) if c and "paint" in c][:1]
    assert paint, "sample world has paint"
    r = rec.recommend(_req(world, paint, page="checkout"), rules=engine)
    assert r.accessories
    basket = {str(world.catalog.skus[p]) for p in paint}
    assert all(a.rule_id and a.reason and a.sku not in basket for a in r.accessories)
    assert not rec.recommend(_req(world, paint, page="product"), rules=engine).accessories


def test_save_load_gives_identical_output(world, fitted, tmp_path):
    rec = fitted.recommender
    path = rec.save(tmp_path / "bundle", run_id="run-123")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["schema_version"] == 1 and manifest["run_id"] == "run-123"
    assert manifest["feature_set"]["name"] == "basket_completion"
    assert manifest["config_hash"] == rec.config.hash
    loaded = load_recommender(path)
    assert loaded.version == rec.version
    for rows in ([0, 7], [3], [100, 200, 300], []):
        a, b = rec.recommend(_req(world, rows)), loaded.recommend(_req(world, rows))
        assert [(i.sku, i.score, i.sources, i.reason) for i in a.items] == [
            (i.sku, i.score, i.sources, i.reason) for i in b.items
        ]
        assert a.style == b.style
    assert [i.sku for i in rec.popular(5)] == [i.sku for i in loaded.popular(5)]
    # mined rule suggestions travel in the bundle and act as default checkout rules
    assert (path / "mined_rules.json").exists() and loaded.default_rules is not None
    assert loaded.product_recommendations(str(world.catalog.skus[3]), 4).items


def test_bad_bundles_fail_naming_the_file(fitted, tmp_path):
    path = fitted.recommender.save(tmp_path / "b")
    with pytest.raises(BundleError, match="not a directory"):
        load_recommender(tmp_path / "nope")
    m = json.loads((path / "manifest.json").read_text())
    m["schema_version"] = 99
    (path / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=r"manifest.json.*schema_version 99"):
        load_recommender(path)
    m["schema_version"] = 1
    (path / "manifest.json").write_text(json.dumps(m))
    (path / "ranker" / "ranker.txt").write_text("garbage")
    with pytest.raises(BundleError, match="ranker"):
        load_recommender(path)
    (path / "catalog.parquet").unlink()
    with pytest.raises(BundleError, match="catalog.parquet"):
        load_recommender(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="manifest.json"):
        load_recommender(path)


def test_config_is_validated_before_any_work(tmp_path):
    bad_gen = dict(SMALL, candidates={"generators": [{"name": "magic", "quota": 5}]})
    with pytest.raises(ConfigError, match="unknown generator 'magic'"):
        parse_pipeline_config(bad_gen)
    with pytest.raises(ConfigError, match="unknown style 'gothic'"):
        parse_pipeline_config(dict(SMALL, style={"styles": ["loft", "gothic"]}))
    with pytest.raises(ConfigError, match="has no parameter 'factorz'"):
        parse_pipeline_config(
            dict(SMALL, candidates={"generators": [{"name": "cf", "params": {"factorz": 3}}]})
        )
    with pytest.raises(ConfigError, match="sum to 1"):
        parse_pipeline_config(dict(SMALL, training={"generator_share": 0.9}))
    with pytest.raises(ConfigError, match="unknown key 'rankr'"):
        parse_pipeline_config(dict(SMALL, rankr={}))
    f = tmp_path / "p.yaml"
    f.write_text("version: 1\nranker: {exclude_features: [no_such_feature]}\n")
    with pytest.raises(ConfigError, match="unknown feature 'no_such_feature'"):
        load_pipeline_config(f)
    default = load_pipeline_config()
    assert default.hash == load_pipeline_config().hash and len(default.hash) == 16


def _loft_basket(world) -> tuple[BasketLine, BasketLine]:
    """The defining example: grey porcelain tile (concrete look) + paintable wallpaper."""
    f = world.catalog.frame
    tile = f[(f["category"] == "porcelain-tile") & (f["color"] == "grey") & f["in_stock"]]
    paper = f[
        (f["category"] == "wallpaper")
        & f["in_stock"]
        & f["attributes"].map(lambda a: str(a.get("paintable", "")).lower() in ("yes", "true"))
    ]
    return BasketLine(str(tile["sku"].iloc[0])), BasketLine(str(paper["sku"].iloc[0]))


def test_style_slots_complete_the_look(world, fitted):
    """With ``diversity.style_slots`` the cart list keeps places for items in the basket's
    style from categories it lacks; the list length and its other items stay ranked."""

    def replace(config, style_slots):  # noqa: ANN001, ANN202
        return config.model_copy(
            update={"diversity": config.diversity.model_copy(update={"style_slots": style_slots})}
        )

    rec = fitted.recommender
    req = RecommendationRequest(basket=_loft_basket(world), page="cart", k=10)
    original = rec.config
    try:
        rec.config = replace(original, style_slots=0)
        plain = rec.recommend(req)
        rec.config = replace(original, style_slots=3)
        looked = rec.recommend(req)
    finally:
        rec.config = original
    assert looked.style.top == "loft"
    assert len(looked.items) == len(plain.items) == 10
    basket_cats = {
        world.catalog.frame["category"].iat[world.catalog.ids.row(b.sku)] for b in req.basket
    }
    look = [i for i in looked.items if i.reason == "completes a loft look"]
    look_cats = [world.catalog.frame["category"].iat[world.catalog.ids.row(i.sku)] for i in look]
    assert len(look) >= 3 and not set(look_cats) & basket_cats
    assert len(set(look_cats)) >= 3  # one per category, not three coffee tables
    # the look is completed with furniture, lighting, textiles or decor, not more tiles or paint
    from recsys.sample_world.vocabulary import CATEGORY_BY_SLUG

    assert {CATEGORY_BY_SLUG[c].family for c in look_cats} <= {
        "furniture",
        "lighting",
        "textiles",
        "decor",
    }
    # items that were not displaced keep their relative order
    kept = [i.sku for i in looked.items if i.sku in {p.sku for p in plain.items}]
    assert kept == [p.sku for p in plain.items if p.sku in set(kept)]


def test_no_look_places_when_the_shoppers_taste_contradicts_the_basket(world, fitted):
    """The "complete the look" places are reserved for the basket's style only when the
    shopper's own taste (their style affinity, when known) does not contradict it: a shopper
    whose purchases are all of another style gets the list without reserved places."""
    from recsys.recommendation import UserContext

    rec = fitted.recommender
    other = next(s for s in rec.catalog.taxonomy.slugs if s != "loft")
    original = rec.config

    def answers(affinity):  # noqa: ANN001, ANN202
        req = RecommendationRequest(
            basket=_loft_basket(world),
            page="cart",
            k=10,
            user_context=UserContext(style_affinity=affinity),
        )
        out = []
        for slots in (0, 3):
            diversity = original.diversity.model_copy(update={"style_slots": slots})
            rec.config = original.model_copy(update={"diversity": diversity})
            out.append([i.sku for i in rec.recommend(req).items])
        return out

    try:
        plain, looked = answers({"loft": 1.0})
        assert plain != looked, "the same taste: the places are reserved"
        plain, looked = answers({other: 1.0})
        assert plain == looked, f"a {other} shopper: no places reserved for a loft look"
        plain, looked = answers(None)
        assert plain != looked, "unknown taste: the basket alone decides"
    finally:
        rec.config = original


def test_evaluation_scores_exactly_the_served_list(world, fitted):
    """One served path: the list offline evaluation scores for a basket is, item for item,
    what ``recommend()`` answers for the same request (one request at a time, as the API)."""
    from recsys.data.orders import build_orders
    from training.evaluation import evaluate
    from training.splits import hide_items

    rec = fitted.recommender
    orders = build_orders(world.interactions, world.catalog)
    late = orders.subset(orders.ts >= np.quantile(orders.ts, 0.9))
    completions = hide_items(late, 0.3, np.random.default_rng(3), 60)
    result = evaluate(rec, late, completions, int(late.ts.min()), ground_truth=world.ground_truth)
    assert len(result.served_lists) == len(completions) > 20
    assert any(len(lst) == 10 for lst in result.served_lists)
    for req, rows in zip(result.served_requests, result.served_lists, strict=True):
        answer = rec.recommend(req)
        assert [rec.catalog.ids.row(i.sku) for i in answer.items] == rows
    # and the served figures are computed from those lists
    assert result.metrics == result.baselines["ranker"]


def test_the_evaluated_model_knows_nothing_after_the_evaluation_cut(world) -> None:
    """Point-in-time lookups are not enough: the evaluated model's popularity and shopper
    timelines must stop at the evaluation window, as a bundle trained then would (otherwise an
    evaluation basket sees the shopper's later orders of the same window)."""
    import pandas as pd

    from feature_store.statistics import TS_BITS
    from training.fit import fit_recommender

    result = fit_recommender(
        world.catalog, world.interactions, parse_pipeline_config(SMALL), seed=4, refit=False
    )
    cut = pd.Timestamp(result.windows["cuts"].split(", ")[-1]).timestamp()
    stats = result.recommender.features.stats
    mask = (1 << TS_BITS) - 1
    for keys in (stats.timeline_keys_, stats.user_timeline_keys_):
        assert len(keys), "the timeline is not empty"
        assert (keys & mask).max() + stats.base_ts_ < cut
    served = fit_recommender(
        world.catalog, world.interactions, parse_pipeline_config(SMALL), seed=4, refit=True
    ).recommender.features.stats
    assert (served.timeline_keys_ & mask).max() + served.base_ts_ >= cut, "served: every order"
