"""The sample world: deterministic, valid under the contracts, and with the statistical
properties the product relies on (style follows attributes, finishing materials untagged,
accessories forgotten at the stated rates, the loft example occurring naturally)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import load_catalog, load_interactions
from recsys.sample_world import World, generate_catalog, generate_world
from recsys.sample_world.vocabulary import FORGET_PROBABILITY, FORGET_RANGE, STYLES

REQUIRED_CATEGORIES = {
    "porcelain-tile",
    "ceramic-tile",
    "wallpaper",
    "wall-paint",
    "primer",
    "laminate-flooring",
    "coffee-table",
    "dining-table",
    "chair",
    "sofa",
    "shelving",
    "chandelier",
    "pendant-lamp",
    "floor-lamp",
    "curtains",
    "rug",
    "mirror",
    "paint-roller",
    "paint-brush",
    "masking-tape",
    "protective-gloves",
    "drop-cloth",
    "construction-waste-bags",
    "tile-adhesive",
    "grout",
    "tile-spacers",
    "wallpaper-paste",
    "underlay",
}
TOOLS = {
    "paint-roller",
    "paint-brush",
    "masking-tape",
    "protective-gloves",
    "drop-cloth",
    "construction-waste-bags",
    "tile-adhesive",
    "grout",
    "tile-spacers",
    "wallpaper-paste",
    "underlay",
    "primer",
}


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(seed=11, n_orders=6000)


@pytest.fixture(scope="module")
def items(world: World) -> pd.DataFrame:
    """Catalog joined with the generator's item truth and the paintable flag."""
    frame = world.catalog.frame.merge(world.item_styles, on="sku")
    frame["paintable"] = [bool(a.get("paintable", False)) for a in frame["attributes"]]
    frame["is_loft"] = [("loft" in s) for s in frame["true_styles"]]
    return frame


@pytest.fixture(scope="module")
def purchases(world: World, items: pd.DataFrame) -> pd.DataFrame:
    p = world.interactions.purchases()
    p = p.merge(items[["sku", "category", "color", "paintable"]], on="sku")
    return p.merge(
        world.ground_truth[["order_id", "order_style", "kind", "project"]], on="order_id"
    )


def test_same_seed_same_world_different_seed_differs(tmp_path: Path) -> None:
    a, b, c = (generate_world(seed=s, n_orders=600) for s in (3, 3, 4))
    pd.testing.assert_frame_equal(a.catalog.frame, b.catalog.frame)
    pd.testing.assert_frame_equal(a.interactions.frame, b.interactions.frame)
    pd.testing.assert_frame_equal(a.ground_truth, b.ground_truth)
    assert a.summary == b.summary
    pa, pb = a.save(tmp_path / "a"), b.save(tmp_path / "b")
    for name in ("catalog", "interactions", "ground_truth", "item_styles", "summary"):
        assert pa[name].read_bytes() == pb[name].read_bytes(), name
    assert not a.catalog.frame["title"].equals(c.catalog.frame["title"])
    assert not a.interactions.frame["sku"].equals(c.interactions.frame["sku"])


def test_catalog_does_not_depend_on_the_number_of_orders() -> None:
    small, large = generate_world(seed=5, n_orders=200), generate_world(seed=5, n_orders=900)
    pd.testing.assert_frame_equal(small.catalog.frame, large.catalog.frame)


def test_saved_world_loads_under_the_contracts(world: World, tmp_path: Path) -> None:
    paths = world.save(tmp_path)
    catalog = load_catalog(paths["catalog"])
    events = load_interactions(paths["interactions"], catalog=catalog)
    assert len(catalog) == len(world.catalog) and len(events) == len(world.interactions)
    truth = pd.read_parquet(paths["ground_truth"])
    assert list(truth.columns[:2]) == ["order_id", "user_id"]
    assert json.loads(paths["summary"].read_text())["orders"] == len(truth)
    again = World.load(tmp_path)
    pd.testing.assert_frame_equal(again.interactions.frame, world.interactions.frame)
    pd.testing.assert_frame_equal(again.catalog.frame, world.catalog.frame)
    assert again.summary == world.summary
    assert (
        again.ground_truth["forgotten_skus"].map(list).tolist()
        == world.ground_truth["forgotten_skus"].tolist()
    )


def test_catalog_shape_and_vocabulary(world: World, items: pd.DataFrame) -> None:
    assert len(world.catalog) >= 3000
    assert len(world.catalog.categories) >= 30
    assert set(world.catalog.categories) >= REQUIRED_CATEGORIES
    assert world.catalog.taxonomy.slugs == STYLES
    assert set(STYLES) >= {
        "loft",
        "scandinavian",
        "classic",
        "modern",
        "provence",
        "minimalism",
        "boho",
        "art-deco",
    }
    wallpaper = items[items["category"] == "wallpaper"]
    assert all("paintable" in a for a in wallpaper["attributes"])
    assert 0.05 < wallpaper["paintable"].mean() < 0.6
    assert 0.05 <= 1 - items["in_stock"].mean() <= 0.08
    assert items["price"].gt(0).all()
    # prices differ by category: a sofa costs more than masking tape, tile more than spacers
    med = items.groupby("category")["price"].median()
    assert med["sofa"] > 20 * med["masking-tape"] and med["porcelain-tile"] > med["tile-spacers"]


def test_titles_are_built_from_attributes(items: pd.DataFrame) -> None:
    titles = set(items["title"])
    assert any(re.fullmatch(r"Grey porcelain stoneware tile \S+ concrete look", t) for t in titles)
    loft = items[items["is_loft"]]
    assert any(
        re.fullmatch(r"Coffee table with black metal frame and .+ top", t) for t in loft["title"]
    )
    assert any(t.startswith("Metal and wood chandelier") for t in loft["title"])
    row = items.iloc[0]
    assert row["color"] in row["title"].lower()


def test_tagging_by_family(items: pd.DataFrame) -> None:
    share = items.groupby("family")["tagged"].mean()
    assert share["finishing"] <= 0.15
    for family in ("furniture", "lighting", "decor", "textiles"):
        assert 0.65 <= share[family] <= 0.88, family
    tools = items[items["category"].isin(TOOLS)]
    assert (tools["styles"].str.len() == 0).all() and (tools["true_styles"].str.len() == 0).all()
    tagged = items[items["tagged"]]
    wrong = [
        not set(t) <= set(s) for t, s in zip(tagged["styles"], tagged["true_styles"], strict=True)
    ]
    assert 0.02 <= np.mean(wrong) <= 0.09


def test_loft_follows_its_attributes(items: pd.DataFrame) -> None:
    styled = items[items["family"] != "tools"]
    base = styled["is_loft"].mean()
    loft_like = (
        styled["color"].isin(["grey", "black", "anthracite"])
        | styled["material"].isin(["metal", "concrete", "brick", "metal and wood"])
        | styled["pattern"].isin(["concrete look", "brick look"])
    )
    assert styled.loc[loft_like, "is_loft"].mean() > 2 * base
    assert styled.loc[~loft_like, "is_loft"].mean() < base
    metal = styled["material"].isin(["metal", "metal and wood"])
    assert styled.loc[metal, "is_loft"].mean() > 4 * base
    # the other direction: loft SKUs are mostly grey/black/anthracite or metal/concrete/brick
    assert loft_like[styled["is_loft"]].mean() > 0.7
    # and other styles keep their own signature
    scandi = np.array(["scandinavian" in s for s in styled["true_styles"]])
    light = styled["color"].isin(["white", "light grey", "natural"]).to_numpy()
    assert scandi[light].mean() > 2 * scandi.mean()


def test_shoppers_orders_and_events(world: World) -> None:
    truth = world.ground_truth
    projects = truth[truth["kind"] == "project"]
    assert len(projects) == 6000
    assert 0.15 < projects["user_id"].isna().mean() < 0.35
    per_user = projects["user_id"].dropna().value_counts()
    assert (per_user >= 2).mean() > 0.3  # returning users
    mixed = projects["shopper_styles"].str.len() == 2
    assert 0.15 < mixed.mean() < 0.35
    assert all(
        o in s for o, s in zip(projects["order_style"], projects["shopper_styles"], strict=True)
    )
    span = truth["ts"].max() - truth["ts"].min()
    assert span > pd.Timedelta(days=300)
    counts = world.interactions.frame["event"].value_counts()
    assert counts["view"] > counts["add_to_cart"] > counts["purchase"]
    assert world.interactions.frame["ts"].is_monotonic_increasing


def test_popularity_has_a_long_tail(purchases: pd.DataFrame) -> None:
    tiles = purchases[purchases["category"] == "porcelain-tile"]["sku"].value_counts()
    top = tiles.iloc[: max(1, len(tiles) // 10)].sum()
    assert top / tiles.sum() > 0.35


def test_main_items_follow_the_order_style(purchases: pd.DataFrame, items: pd.DataFrame) -> None:
    styled = purchases.merge(items[["sku", "true_styles", "family"]], on="sku")
    styled = styled[styled["family"] != "tools"]
    fit = [o in t for o, t in zip(styled["order_style"], styled["true_styles"], strict=True)]
    assert 0.7 < np.mean(fit) < 0.97  # style-conditioned, with noise


def test_forgotten_accessories(world: World, purchases: pd.DataFrame) -> None:
    truth = world.ground_truth
    s = world.summary
    lo, hi = FORGET_RANGE
    assert lo <= s["forget_rate"] <= hi
    bought = purchases.groupby("order_id")["sku"].agg(set)
    forgotten = truth.explode(["forgotten_categories", "forgotten_skus", "forgotten_bought_in"])
    forgotten = forgotten.dropna(subset=["forgotten_skus"])
    # a forgotten SKU is not in its order ...
    assert not any(
        sku in bought.get(o, set())
        for o, sku in zip(forgotten["order_id"], forgotten["forgotten_skus"], strict=True)
    )
    # ... and when bought later, it is in the follow-up order, within two weeks, same user
    later = forgotten.dropna(subset=["forgotten_bought_in"])
    assert 0.4 < len(later) / len(forgotten) < 0.75
    by_id = truth.set_index("order_id")
    for _, row in later.head(300).iterrows():
        follow = by_id.loc[row["forgotten_bought_in"]]
        assert row["forgotten_skus"] in bought[row["forgotten_bought_in"]]
        assert follow["kind"] == "follow-up" and follow["follow_up_of"] == row["order_id"]
        assert pd.Timedelta(0) < follow["ts"] - row["ts"] <= pd.Timedelta(days=14)
        if row["user_id"] is not None:
            assert follow["user_id"] == row["user_id"]
    # per kind, the observed rate is near the stated probability (needed = bought + forgotten)
    paint = truth[
        (truth["kind"] == "project")
        & truth["order_id"].isin(purchases.loc[purchases["category"] == "wall-paint", "order_id"])
    ]
    n_paint = len(paint)
    assert n_paint > 400
    for kind in ("protective-gloves", "masking-tape", "construction-waste-bags", "paint-roller"):
        rate = paint["forgotten_categories"].apply(lambda c, k=kind: k in c).mean()
        assert abs(rate - FORGET_PROBABILITY[kind]) < 0.07, kind
        bought_kind = set(paint["order_id"]) & set(
            purchases.loc[purchases["category"] == kind, "order_id"]
        )
        assert len(bought_kind) + round(rate * n_paint) == n_paint  # every paint order needs it


def test_loft_baskets_hold_grey_porcelain_tile_and_paintable_wallpaper(
    purchases: pd.DataFrame,
) -> None:
    p = purchases[purchases["kind"] == "project"]
    grey_tile = (p["category"] == "porcelain-tile") & p["color"].isin(["grey", "anthracite"])
    paintable = (p["category"] == "wallpaper") & p["paintable"]
    orders = (
        p.assign(
            gt=grey_tile,
            pw=paintable,
            t=p["category"] == "porcelain-tile",
            w=p["category"] == "wallpaper",
        )
        .groupby("order_id")
        .agg(
            style=("order_style", "first"),
            gt=("gt", "any"),
            pw=("pw", "any"),
            t=("t", "any"),
            w=("w", "any"),
        )
    )
    both = orders[orders["t"] & orders["w"]]
    example = both["gt"] & both["pw"]
    loft = both["style"] == "loft"
    assert loft.sum() >= 10
    assert example[loft].mean() > 0.2
    assert example[loft].mean() > 3 * example[~loft].mean()


def test_generate_catalog_alone_and_bad_sizes() -> None:
    a, b = generate_catalog(seed=2, n_skus=500), generate_catalog(seed=2, n_skus=500)
    assert len(a) == 500 and a.frame["title"].equals(b.frame["title"])
    assert len(a.categories) == len(generate_catalog(seed=2, n_skus=4000).categories)
    with pytest.raises(ValueError, match="n_skus must be at least"):
        generate_catalog(seed=2, n_skus=10)
    with pytest.raises(ValueError, match="n_orders must be >= 1"):
        generate_world(seed=2, n_orders=0)


@pytest.mark.slow
def test_default_world_is_deterministic_and_big_enough() -> None:
    a, b = generate_world(seed=7), generate_world(seed=7)
    assert a.summary == b.summary
    pd.testing.assert_frame_equal(a.interactions.frame, b.interactions.frame)
    assert a.summary["project_orders"] >= 50_000 and a.summary["skus"] >= 3000
    assert a.summary["interactions"] > 1_000_000
