"""Product search ranks by relevance (``recsys.data.product_search`` behind ``Catalog.search``)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.sample_world import generate_world
from tests.rules.conftest import make_catalog


@pytest.fixture(scope="module")
def catalog():
    return generate_world(seed=3, n_orders=200).catalog


def _cats(catalog, rows) -> list[str]:
    return [catalog.frame["category"].iat[int(r)] for r in rows]


def test_wall_paint_finds_wall_paint_first(catalog) -> None:
    """The issue's case: substring matching listed paintable wallpapers first (wall paint was
    result 88); every wall paint now comes before anything else."""
    rows = catalog.search("wall paint")
    n_paint = int((catalog.frame["category"] == "wall-paint").sum())
    assert n_paint > 0 and len(rows) > n_paint, "wallpapers still match, after the paints"
    assert set(_cats(catalog, rows[:n_paint])) == {"wall-paint"}
    assert "wall-paint" not in _cats(catalog, rows[n_paint:])
    assert len(set(rows.tolist())) == len(rows)


def test_prefixes_and_typos(catalog) -> None:
    exact = catalog.search("laminate")
    assert len(exact) and set(_cats(catalog, exact[:5])) <= {"laminate-flooring", "underlay"}
    assert np.array_equal(catalog.search("lamnate"), exact), (
        "a typo is corrected to the catalog's word"
    )
    assert np.array_equal(catalog.search("LAMIN"), exact), "a prefix finds the whole word"
    assert len(catalog.search("xqzzyv")) == 0, "no close word: nothing, not everything"
    assert len(catalog.search("")) == len(catalog), "no words: the whole catalog in order"


def test_every_word_must_match_and_title_beats_sku(catalog) -> None:
    rows = catalog.search("grey porcelain")
    titles = catalog.frame["title"].str.lower().to_numpy()[rows]
    assert len(rows) and all("grey" in t and "porcelain" in t for t in titles)
    sku = str(catalog.frame["sku"].iat[7])
    assert catalog.search(sku).tolist() == [7]
    mask = catalog.text_matches("grey porcelain")
    assert mask.dtype == bool and set(np.flatnonzero(mask)) == set(rows.tolist())


def test_category_named_exactly_comes_first_in_a_tiny_catalog() -> None:
    c = make_catalog()
    rows = c.search("grout")
    assert [c.frame["sku"].iat[int(r)] for r in rows] == ["GR1", "GR2", "GR3"]
    # "tile" names the tile category: tiles before tile adhesive
    assert _cats(c, c.search("tile")) == ["tile", "tile", "tile-adhesive"]
