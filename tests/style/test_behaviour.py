"""Behavioural tests of the style model on a small sample world (3,000 orders): invariance,
direction, neutrality and the defining example of the issue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import sample_world
from recsys.data.catalog import validate_catalog
from recsys.data.orders import build_orders
from recsys.style import BasketStyleInferer, ItemStyleModel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world():
    return sample_world.generate_world(seed=11, n_orders=3000)


@pytest.fixture(scope="module")
def orders(world):
    return build_orders(world.interactions, world.catalog).matrix


@pytest.fixture(scope="module")
def inferer(world, orders) -> BasketStyleInferer:
    model = ItemStyleModel(seed=0).fit(world.catalog, orders)
    return BasketStyleInferer.from_model(model, world.catalog)


@pytest.fixture(scope="module")
def baskets(world, orders) -> list[np.ndarray]:
    """Styled multi-item baskets of real orders (first 40 with 3+ items)."""
    out = []
    for r in range(orders.shape[0]):
        items = orders.indices[orders.indptr[r] : orders.indptr[r + 1]]
        if len(items) >= 3:
            out.append(np.sort(items))
        if len(out) == 40:
            break
    return out


def where(world, **conds) -> np.ndarray:
    frame = world.catalog.frame
    mask = np.ones(len(frame), bool)
    for col, test in conds.items():
        mask &= frame[col].map(test).to_numpy(bool)
    return np.flatnonzero(mask)


def col(world, slug: str) -> int:
    return world.catalog.taxonomy.index(slug)


def test_invariance_basket_order_price_stock_and_size_do_not_move_the_style(
    world, orders, inferer, baskets
):
    for b in baskets[:10]:
        assert np.allclose(inferer.infer_vector(b), inferer.infer_vector(b[::-1]))
    frame = world.catalog.to_frame()
    rng = np.random.default_rng(0)
    frame["price"] = frame["price"] * rng.uniform(0.5, 2.0, len(frame))
    frame["in_stock"] = rng.random(len(frame)) < 0.5
    # shuffle the (style-irrelevant) size attribute among the products that have one
    attrs = [__import__("json").loads(a) for a in frame["attributes"]]
    sized = [i for i, a in enumerate(attrs) if "size" in a]
    sizes = [attrs[i]["size"] for i in sized]
    for i, s in zip(sized, rng.permutation(sizes), strict=True):
        attrs[i]["size"] = str(s)
    frame["attributes"] = [__import__("json").dumps(a) for a in attrs]
    changed = validate_catalog(frame, "<changed>", world.catalog.taxonomy)
    other = BasketStyleInferer.from_model(ItemStyleModel(seed=0).fit(changed, orders), changed)
    diffs = [np.abs(inferer.infer_vector(b) - other.infer_vector(b)).max() for b in baskets]
    assert max(diffs) < 0.05


@pytest.fixture(scope="module")
def edited(world, orders):
    """Counterfactual catalog: every untagged coffee table gets a black metal frame, every
    untagged mirror a gilded finish; refitted on the same orders."""
    frame = world.catalog.to_frame()
    untagged = np.array([not s for s in frame["styles"]])
    tables = np.flatnonzero(untagged & (frame["category"] == "coffee-table").to_numpy())
    for i in tables:
        old = f"{frame.at[i, 'color']} {frame.at[i, 'material']} frame"
        frame.at[i, "title"] = frame.at[i, "title"].replace(old, "black metal frame")
        frame.at[i, "color"], frame.at[i, "material"] = "black", "metal"
    mirrors = np.flatnonzero(untagged & (frame["category"] == "mirror").to_numpy())
    frame.loc[mirrors, "finish"] = "gilded"
    catalog = validate_catalog(frame, "<edited>", world.catalog.taxonomy)
    model = ItemStyleModel(seed=0).fit(catalog, orders)
    return BasketStyleInferer.from_model(model, catalog), tables, mirrors


@pytest.mark.parametrize(("kind", "style"), [("tables", "loft"), ("mirrors", "art-deco")])
def test_direction_black_metal_coffee_table_means_loft_and_gilded_mirror_art_deco(
    world, inferer, edited, baskets, kind, style
):
    after, tables, mirrors = edited
    items = tables if kind == "tables" else mirrors
    assert len(items) >= 3
    j = col(world, style)
    than_before = than_original = total = 0
    for item in items:
        for b in baskets:
            if item in b:
                continue
            with_edit = after.infer_vector(np.append(b, item))[j]
            than_before += with_edit > inferer.infer_vector(b)[j]
            than_original += with_edit > inferer.infer_vector(np.append(b, item))[j]
            total += 1
    # the same product pushes the basket further toward the style with the new frame / finish
    # than with its original one...
    assert than_original / total >= 0.9
    # ...and adding it makes the style likelier in most baskets (not all: a mirror bought only by
    # provence shoppers keeps that behavioural evidence, gilded or not)
    assert than_before / total > 0.5


def test_real_black_metal_coffee_tables_push_loft_unless_tagged_otherwise(
    world, orders, inferer, baskets
):
    tables = where(
        world,
        category=lambda c: c == "coffee-table",
        color=lambda c: c == "black",
        material=lambda m: bool(m) and "metal" in m,
    )
    loft = col(world, "loft")
    checked = 0
    model = ItemStyleModel(seed=0).fit(world.catalog, orders)
    report = model.tag_disagreements(world.catalog)
    for table in tables:
        tags = world.catalog.frame["styles"].iloc[table]
        if tags and "loft" not in tags:
            # the product's own (here: wrong) tag is kept, and the report flags it
            sku = world.catalog.skus[table]
            if model.heldout_styles_[table].argmax() == loft:
                assert sku in set(report["sku"])
            continue
        rises = [
            inferer.infer_vector(np.append(b, table))[loft] > inferer.infer_vector(b)[loft]
            for b in baskets
            if table not in b
        ]
        assert np.mean(rises) >= 0.95
        checked += 1
    assert checked >= 1


def test_neutrality_gloves_change_nothing(world, inferer, baskets):
    gloves = where(world, category=lambda c: c == "protective-gloves")
    assert len(gloves)
    moved = []
    for glove in gloves:
        moved.append(
            max(
                np.abs(inferer.infer_vector(np.append(b, glove)) - inferer.infer_vector(b)).max()
                for b in baskets
            )
        )
    # most gloves are marked neutral (exactly no effect); none may move a basket by much
    assert np.mean(np.asarray(moved) == 0.0) >= 0.75
    assert max(moved) < 0.1
    reading = inferer.infer(gloves[:2])
    assert reading.top is None


def test_grey_porcelain_tile_and_paintable_wallpaper_read_loft(world, inferer):
    truth = world.item_styles.set_index("sku").loc[list(world.catalog.skus), "true_styles"]
    loft = np.array(["loft" in t for t in truth])
    untagged = np.array([not s for s in world.catalog.frame["styles"]])
    titles = pd.Series(world.catalog.frame["title"]).str.lower()
    tiles = np.flatnonzero(titles.str.contains("grey porcelain stoneware tile") & loft & untagged)
    papers = np.flatnonzero(titles.str.contains("paintable") & loft & untagged)
    assert len(tiles) and len(papers)
    reading = inferer.infer(np.array([tiles[0], papers[0]]))
    assert reading.top == "loft"
    assert "suggest loft" in reading.explanation
    assert {e.sku for e in reading.evidence if e.style == "loft"} == set(
        world.catalog.ids.external([tiles[0], papers[0]])
    )
    tops = [
        inferer.infer_vector(np.array([t, p])).argmax() == col(world, "loft")
        for t in tiles
        for p in papers
    ]
    assert np.mean(tops) >= 2 / 3  # most pairs; the 50,000-order report measures the share
